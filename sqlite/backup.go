package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/mattn/go-sqlite3"
)

// Backup copies the database at src into a new file dst with SQLite's
// online backup API, in one step: the copy is one read transaction of the
// source, so it is consistent (every commit before it, none after) while a
// server keeps writing (WAL mode lets its writers go on beside the read).
// dst must not exist. The copy is checked with PRAGMA integrity_check.
func Backup(ctx context.Context, src, dst string) (err error) {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("backup: %s exists", dst)
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	sdb, err := sql.Open("sqlite3", "file:"+src+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer sdb.Close()
	ddb, err := sql.Open("sqlite3", "file:"+dst)
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", dst, err)
	}
	defer ddb.Close()
	sc, err := sdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer sc.Close()
	dc, err := ddb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer dc.Close()
	err = dc.Raw(func(d any) error {
		return sc.Raw(func(s any) error {
			dconn, ok1 := d.(*sqlite3.SQLiteConn)
			sconn, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a go-sqlite3 connection")
			}
			bk, err := dconn.Backup("main", sconn, "main")
			if err != nil {
				return err
			}
			done, err := bk.Step(-1) // every page, in one read transaction
			if ferr := bk.Finish(); err == nil {
				err = ferr
			}
			if err == nil && !done {
				err = errors.New("backup stopped before the last page")
			}
			return err
		})
	})
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("backup %s: %w", src, err)
	}
	if err := IntegrityCheck(ctx, dc); err != nil {
		os.Remove(dst)
		return fmt.Errorf("backup %s: the copy: %w", src, err)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check on a connection.
func IntegrityCheck(ctx context.Context, c interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) error {
	var res string
	if err := c.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	return nil
}

// CheckFile runs PRAGMA integrity_check on the database file at path.
func CheckFile(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	return IntegrityCheck(ctx, db)
}
