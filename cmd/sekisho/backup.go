package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/sqlite"
)

// A backup is a gzipped tar: MANIFEST.json first, then the files it lists
// with their SHA-256. It holds the database (an online copy by SQLite's
// backup API), the sealed keyring and the audit keys; never the master key,
// which must be kept apart from it (see the README's "Backup and restore").
const (
	backupFormat   = "sekisho-backup/1"
	manifestName   = "MANIFEST.json"
	checkpointName = "checkpoint" // the newest checkpoint inside the copy, as a note
)

// backupManifest describes a backup.
type backupManifest struct {
	Format  string       `json:"format"`
	Created time.Time    `json:"created"`
	Version string       `json:"sekisho_version"`
	Files   []backupFile `json:"files"`
	// AuditSize and CheckpointSize: the audit log's size in the copy, and
	// the size of its newest signed checkpoint (0 if none).
	AuditSize      uint64 `json:"audit_size"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	// Stores are the stores in the backup, the default one first, then
	// each region's with a store of its own (--config).
	Stores []*backupStore `json:"stores,omitempty"`
}

type backupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// backupFiles are the data directory's files a backup holds besides the
// database: without the keyring no record opens; without the audit keys
// the restored log cannot sign checkpoints that auditors' pinned key checks.
var backupFiles = []string{keys.KeyringFile, audit.SigningKeyFile, audit.VerifierKeyFile}

func newBackupCmd() *cobra.Command {
	var data, out, format, store, config string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write an online, consistent backup of a data directory (SQLite) to a file",
		Long: `Copy the embedded SQLite database with SQLite's online backup API (one read
transaction: every commit before it, none after, while sekisho serve keeps
running), with the sealed keyring and the audit keys, into one file (a gzipped
tar with a manifest of SHA-256 sums). The copy is checked with PRAGMA
integrity_check and its audit log verified before the file is written.

The master key is NOT in the backup: keep it apart (a secrets manager, or the
HSM for a PKCS#11 key), with the audit verifier key pinned by your auditors and
a recent checkpoint (sekisho audit checkpoint), to check a restore against.
With --store URL the store is PostgreSQL: pg_dump dumps it from a snapshot
exported by a REPEATABLE READ transaction, and the dump is checked against that
snapshot (the snapshot's audit log verifies; every table of the dump holds the
snapshot's row count; the dumped audit log holds the same events); --data gives
the keyring and audit keys. With --config, the configuration file's data and
store and every region's own store (PostgreSQL or sqlite:PATH) are backed up
into the one file, each checked the same way. For point-in-time recovery of
PostgreSQL, use continuous archiving (see the README).`,
		Example: `  sekisho backup --data ./sekisho-data --out /backups/sekisho-$(date +%F).tar.gz
  sekisho backup --store postgres://sekisho@db/sekisho --data /var/lib/sekisho --out /backups/sekisho-pg.tar.gz
  sekisho backup --config sekisho.yaml --out /backups/sekisho-all.tar.gz
  sekisho restore --from /backups/sekisho-2026-12-03.tar.gz --data ./restored`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src := backupSource{data: data, store: store}
			if config != "" {
				c, err := loadConfig(config)
				if err != nil {
					return err
				}
				if !cmd.Flags().Changed("data") && c.Data != "" {
					src.data = c.Data
				}
				if src.store == "" {
					src.store = c.Store
				}
				src.regions = c.Regions
			}
			if src.data == "" || out == "" {
				return usageErrorf("--data DIR (or --config FILE) and --out FILE are required")
			}
			m, err := runBackup(cmd.Context(), src, out)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"file": out, "manifest": m})
			}
			if _, err = fmt.Fprintf(cmd.OutOrStdout(), "backup %s: %d audit events (checkpoint at %d), %d files\n", out, m.AuditSize, m.CheckpointSize, len(m.Files)); err != nil {
				return err
			}
			for _, st := range m.Stores {
				if _, err := fmt.Fprintf(cmd.OutOrStdout(), "  %-8s %-8s %-22s %d audit events (checkpoint at %d)%s\n", st.Log, st.Kind, st.File, st.AuditSize, st.CheckpointSize, tableNote(st)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", os.Getenv("SEKISHO_DATA"), "data directory to back up (it may be in use by sekisho serve)")
	cmd.Flags().StringVar(&out, "out", "", "backup file to write (must not exist)")
	cmd.Flags().StringVar(&store, "store", "", "PostgreSQL URL of the store to back up (pg_dump from one snapshot, checked against it); --data still gives the keyring and audit keys")
	cmd.Flags().StringVar(&config, "config", "", "serve's configuration file: back up its data, store and every region's own store")
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var from, data, format string
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup file into a new data directory, and verify it",
		Long: `Unpack a backup made by sekisho backup into DIR (which must not exist or be
empty), checking every file against the manifest's SHA-256, the database with
PRAGMA integrity_check, and the audit log against the checkpoint the backup
holds. With the master key configured (SEKISHO_MASTER_KEY or
--master-key-file, as for serve) it also checks that the key opens the keyring.

To check the restored log against a checkpoint kept outside the backup:
  sekisho audit verify --data DIR --checkpoint FILE --key PINNED-VERIFIER-KEY`,
		Example: `  sekisho restore --from /backups/sekisho-2026-12-03.tar.gz --data ./restored`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || data == "" {
				return usageErrorf("--from FILE and --data DIR are required")
			}
			m, keyNote, err := runRestore(cmd.Context(), from, data)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"from": from, "data": data, "manifest": m, "master_key": keyNote})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s: %d audit events verified (checkpoint at %d); %s\n",
				from, data, m.AuditSize, m.CheckpointSize, keyNote)
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup file (from sekisho backup)")
	cmd.Flags().StringVar(&data, "data", "", "data directory to create")
	addFormatFlag(cmd.Flags(), &format, "table", "table", "json")
	return cmd
}

// runBackup writes the backup of the data directory dir to out.
// backupSource is what a backup copies: the data directory (keyring,
// audit keys and, without store, the embedded database), the default store
// (a PostgreSQL URL, or "" for the embedded SQLite) and the regions' own
// stores.
type backupSource struct {
	data    string
	store   string
	regions map[string]string
}

func tableNote(st *backupStore) string {
	if len(st.Tables) == 0 {
		return ""
	}
	var n int64
	for _, c := range st.Tables {
		n += c
	}
	return fmt.Sprintf(", %d tables, %d rows checked in the dump", len(st.Tables), n)
}

func runBackup(ctx context.Context, src backupSource, out string) (*backupManifest, error) {
	dir := src.data
	if _, err := os.Stat(out); err == nil {
		return nil, fmt.Errorf("backup: %s exists", out)
	}
	db := filepath.Join(dir, dbFile)
	if src.store == "" || src.store == "sqlite" {
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("backup: no embedded database in %s (for PostgreSQL give --store): %w", dir, err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".sekisho-backup-")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range backupFiles {
		if err := copyFile(filepath.Join(dir, f), filepath.Join(tmp, f)); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	verifierFile := filepath.Join(tmp, audit.VerifierKeyFile)
	m := &backupManifest{Format: backupFormat, Created: time.Now().UTC(), Version: version}
	names := slices.Clone(backupFiles)
	// The default store, then each region's own.
	type source struct{ log, url string }
	sources := []source{{audit.DefaultLog, src.store}}
	for _, r := range slices.Sorted(maps.Keys(src.regions)) {
		sources = append(sources, source{r, src.regions[r]})
	}
	for _, so := range sources {
		var st *backupStore
		switch {
		case so.url == "" || so.url == "sqlite" || strings.HasPrefix(so.url, "sqlite:"):
			path, file := db, dbFile
			if so.log != audit.DefaultLog {
				path, file = sqlitePath(dir, so.url), "region-"+so.log+".db"
			}
			if err := sqlite.Backup(ctx, path, filepath.Join(tmp, file)); err != nil {
				return nil, err
			}
			// The copy's audit log must verify before it is called a backup.
			st = &backupStore{Kind: "sqlite", File: file}
			var sm backupManifest
			cp, err := verifyCopy(ctx, filepath.Join(tmp, file), verifierFile, nil, &sm)
			if err != nil {
				return nil, fmt.Errorf("backup: the copy of the %s store does not verify: %w", so.log, err)
			}
			st.AuditSize, st.CheckpointSize = sm.AuditSize, sm.CheckpointSize
			if cp != nil && so.log == audit.DefaultLog {
				if err := os.WriteFile(filepath.Join(tmp, checkpointName), cp, 0o600); err != nil {
					return nil, err
				}
				names = append(names, checkpointName)
			}
		case strings.HasPrefix(so.url, "postgres://") || strings.HasPrefix(so.url, "postgresql://"):
			file := "store.dump"
			if so.log != audit.DefaultLog {
				file = "region-" + so.log + ".dump"
			}
			v, err := audit.LoadVerifier(verifierFile)
			if err != nil {
				return nil, err
			}
			if st, err = dumpPostgres(ctx, so.url, filepath.Join(tmp, file), v); err != nil {
				return nil, fmt.Errorf("backup: the %s store (%s): %w", so.log, redactDSN(so.url), err)
			}
		default:
			return nil, fmt.Errorf("backup: the %s store %q: want a postgres:// URL, sqlite:PATH, or nothing for the embedded SQLite", so.log, redactDSN(so.url))
		}
		st.Log = so.log
		m.Stores = append(m.Stores, st)
		names = append(names, st.File)
	}
	m.AuditSize, m.CheckpointSize = m.Stores[0].AuditSize, m.Stores[0].CheckpointSize
	if len(m.Stores) == 1 && m.Stores[0].Kind == "sqlite" {
		m.Stores = nil // the plain data-directory backup, as before --store and --config
	}
	for _, n := range names {
		bf, err := hashFile(filepath.Join(tmp, n))
		if err != nil {
			return nil, err
		}
		bf.Name = n
		m.Files = append(m.Files, bf)
	}
	if err := writeArchive(out, tmp, m); err != nil {
		os.Remove(out)
		return nil, fmt.Errorf("backup: write %s: %w", out, err)
	}
	return m, nil
}

// verifyCopy verifies the audit log of the SQLite database at db with the
// verifier key at verifierFile, against external (a checkpoint note) if
// given, and returns the newest checkpoint stored in it, filling m's sizes.
func verifyCopy(ctx context.Context, db, verifierFile string, external []byte, m *backupManifest) ([]byte, error) {
	v, err := audit.LoadVerifier(verifierFile)
	if err != nil {
		return nil, err
	}
	st, err := sqlite.OpenReadOnly(ctx, db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rep, err := audit.Verify(ctx, st, v, external)
	if err != nil {
		return nil, err
	}
	if !rep.OK {
		return nil, fmt.Errorf("audit log: %d problems, the first: %s", len(rep.Problems)+rep.Omitted, firstProblem(rep))
	}
	m.AuditSize = rep.Size
	cps, err := st.Checkpoints(ctx)
	if err != nil || len(cps) == 0 {
		return nil, err
	}
	cp := cps[len(cps)-1]
	m.CheckpointSize = cp.Size
	return cp.Note, nil
}

func firstProblem(rep *audit.Report) string {
	if len(rep.Problems) == 0 {
		return ""
	}
	return fmt.Sprintf("%+v", rep.Problems[0])
}

// runRestore unpacks the backup from into the new data directory dir and
// verifies it. keyNote says whether the master key was checked.
func runRestore(ctx context.Context, from, dir string) (*backupManifest, string, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, "", fmt.Errorf("restore: %s is not empty: restore into a new directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".sekisho-restore-")
	if err != nil {
		return nil, "", fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	m, err := readArchive(from, tmp)
	if err != nil {
		return nil, "", fmt.Errorf("restore %s: %w", from, err)
	}
	stores := m.Stores
	if len(stores) == 0 { // a data-directory backup
		stores = []*backupStore{{Log: audit.DefaultLog, Kind: "sqlite", File: dbFile, AuditSize: m.AuditSize}}
	}
	var dumps []string
	for _, st := range stores {
		if st.Kind != "sqlite" {
			// A PostgreSQL dump was checked against its snapshot when it
			// was made, and here against its SHA-256; it is restored with
			// pg_restore (README), then checked with audit verify --store.
			dumps = append(dumps, st.File)
			continue
		}
		db := filepath.Join(tmp, st.File)
		if err := sqlite.CheckFile(ctx, db); err != nil {
			return nil, "", fmt.Errorf("restore %s: database %s: %w", from, st.File, err)
		}
		var external []byte
		if b, err := os.ReadFile(filepath.Join(tmp, checkpointName)); err == nil && st.Log == audit.DefaultLog {
			external = b
		}
		var got backupManifest
		if _, err := verifyCopy(ctx, db, filepath.Join(tmp, audit.VerifierKeyFile), external, &got); err != nil {
			return nil, "", fmt.Errorf("restore %s: %s: %w", from, st.File, err)
		}
		if got.AuditSize != st.AuditSize {
			return nil, "", fmt.Errorf("restore %s: the manifest says %d audit events in %s, the database holds %d", from, st.AuditSize, st.File, got.AuditSize)
		}
	}
	os.Remove(filepath.Join(tmp, checkpointName))
	keyNote := "the master key was not checked (none configured): start serve with the key this backup was made under"
	defaultKey, _ := keys.DefaultMasterKeyFile(dir)
	if master, _, err := keys.LoadMasterKey(dir, "", defaultKey, false); err == nil {
		if _, err := keys.OpenLocal(tmp, master); err != nil {
			return nil, "", fmt.Errorf("restore %s: the configured master key does not open the backup's keyring: %w", from, err)
		}
		keyNote = "the configured master key opens the keyring"
	}
	if len(dumps) > 0 {
		keyNote += fmt.Sprintf("; PostgreSQL dumps to load with pg_restore into empty databases, then check with sekisho audit verify --store URL: %s", strings.Join(dumps, ", "))
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, "", fmt.Errorf("restore: %w", err)
	}
	return m, keyNote, nil
}

func hashFile(path string) (backupFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return backupFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return backupFile{}, err
	}
	return backupFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeArchive writes the manifest and its files from dir to out, synced.
func writeArchive(out, dir string, m *backupManifest) error {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(mb)), ModTime: m.Created}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	for _, bf := range m.Files {
		if err := tw.WriteHeader(&tar.Header{Name: bf.Name, Mode: 0o600, Size: bf.Size, ModTime: m.Created}); err != nil {
			return err
		}
		src, err := os.Open(filepath.Join(dir, bf.Name))
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, src, bf.Size)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// readArchive unpacks a backup into dir, checking each file against the
// manifest (name, size, SHA-256) and that none is missing or extra.
func readArchive(from, dir string) (*backupManifest, error) {
	f, err := os.Open(from)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("not a sekisho backup: %w", err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != manifestName || h.Size > 1<<20 {
		return nil, fmt.Errorf("not a sekisho backup: no %s first", manifestName)
	}
	var m backupManifest
	if err := json.NewDecoder(io.LimitReader(tr, h.Size)).Decode(&m); err != nil || m.Format != backupFormat {
		return nil, fmt.Errorf("not a sekisho backup (format %q): %v", m.Format, err)
	}
	want := map[string]backupFile{}
	for _, bf := range m.Files {
		if bf.Name != filepath.Base(bf.Name) || bf.Name == "." || bf.Name == ".." {
			return nil, fmt.Errorf("manifest names %q", bf.Name)
		}
		want[bf.Name] = bf
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read backup: %w", err)
		}
		bf, ok := want[h.Name]
		if !ok || h.Typeflag != tar.TypeReg || h.Size != bf.Size {
			return nil, fmt.Errorf("file %q is not in the manifest as it is in the backup", h.Name)
		}
		delete(want, h.Name)
		out, err := os.OpenFile(filepath.Join(dir, bf.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		hs := sha256.New()
		_, err = io.CopyN(io.MultiWriter(out, hs), tr, bf.Size)
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("unpack %s: %w", bf.Name, err)
		}
		if got := hex.EncodeToString(hs.Sum(nil)); got != bf.SHA256 {
			return nil, fmt.Errorf("%s: SHA-256 %s, the manifest says %s: the backup is damaged", bf.Name, got, bf.SHA256)
		}
	}
	for name := range want {
		return nil, fmt.Errorf("%s is missing from the backup", name)
	}
	return &m, nil
}
