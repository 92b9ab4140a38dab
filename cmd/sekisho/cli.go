package main

// How a verb returns errors and prints (every verb follows this):
//
//   - Return errors; never os.Exit, never print an error yourself. main turns
//     the error into the exit status and one line on stderr (exitStatus):
//     a *client.Problem (the server refused) exits 1 with its problem type,
//     a *client.UnreachableError exits 4 with a hint, usageErrorf(...) exits 2,
//     &exitError{code: exitPartial|exitTampered, err: ...} exits 3 or 5, and
//     any other error exits 1. Bad flags, wrong argument counts and unknown
//     commands are usage errors already (finishTree wires them).
//   - A verb that prints takes --format through addFormatFlag (an unknown
//     value is a usage error before RunE runs), prints a table for people by
//     default and, with --format json, one JSON document carrying everything
//     the table shows (writeJSON). Results go to stdout; progress and
//     side remarks to stderr.
//   - Add new commands in newRootCmd before finishTree runs, so that they get
//     the unknown-command errors and usage exit status too.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/client"
)

// Exit statuses, the same for every verb (sekisho --help and the README say so).
const (
	exitOK          = 0
	exitRefused     = 1 // the server refused (problem response), or the operation failed
	exitUsage       = 2 // bad command line: unknown command, flag or format, missing argument
	exitPartial     = 3 // done in part: import rows rejected
	exitUnreachable = 4 // could not reach the server
	exitTampered    = 5 // audit verify: tampering detected
)

const exitCodesHelp = `Exit status (the same for every verb):
  0  success
  1  the server refused (the problem type is printed), or the operation failed
  2  usage error: unknown command or flag, bad argument or --format
  3  partial: some rows of an import were rejected, the rest imported
  4  could not reach the server (is sekisho serve running at the profile's URL?)
  5  tampering detected (audit verify)`

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf is the error of a bad command line (exit status 2).
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitStatus returns the exit status of err and the line to print on
// stderr ("" for none).
func exitStatus(err error) (int, string) {
	if err == nil {
		return exitOK, ""
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err == nil {
			return ee.code, ""
		}
		return ee.code, describe(ee.err)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage, describe(err)
	}
	var un *client.UnreachableError
	if errors.As(err, &un) {
		return exitUnreachable, describe(err)
	}
	return exitRefused, describe(err)
}

// describe returns what a person should read of err: the domain message when
// it is one of ours, the problem type and detail when the server refused.
func describe(err error) string {
	var p *client.Problem
	if errors.As(err, &p) {
		s := fmt.Sprintf("refused by the server: %s (HTTP %d): %s", client.ProblemType(p), p.Status, p.Detail)
		if p.RequestID != "" {
			s += " [request " + p.RequestID + "]"
		}
		return s
	}
	var e *sekisho.Error
	if errors.As(err, &e) {
		if e.Field != "" {
			return e.Message + " (" + e.Field + ")"
		}
		return e.Message
	}
	return err.Error()
}

// finishTree makes the command tree strict, at every level: a group given an
// unknown verb fails with `unknown command "revok" for "sekisho grant"` and
// the closest verbs; bad flags and wrong argument counts are usage errors.
func finishTree(root *cobra.Command) {
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.SuggestionsMinimumDistance = 2
			c.Args = cobra.ArbitraryArgs
			c.RunE = groupRunE
		case c.Args != nil:
			args := c.Args
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return &usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// groupRunE runs a command that only groups verbs: without arguments it
// prints its help; with any, the first is an unknown verb.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	msg += fmt.Sprintf("\n\nRun '%s --help' for its commands.", cmd.CommandPath())
	return &usageError{errors.New(msg)}
}

// formatFlag is a --format value restricted to a list: an unknown value is
// refused when the flags are parsed (exit status 2).
type formatFlag struct {
	value   *string
	allowed []string
}

func (f formatFlag) String() string { return *f.value }
func (f formatFlag) Type() string   { return "format" }
func (f formatFlag) Set(s string) error {
	if !slices.Contains(f.allowed, s) {
		return fmt.Errorf("want one of %s", strings.Join(f.allowed, ", "))
	}
	*f.value = s
	return nil
}

// addFormatFlag adds --format to fs, stored in p, with a default and the
// allowed values (the first few are usually table and json).
func addFormatFlag(fs *pflag.FlagSet, p *string, def string, allowed ...string) {
	*p = def
	fs.Var(formatFlag{value: p, allowed: allowed}, "format", "output: "+strings.Join(allowed, ", "))
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// loadProfile resolves --profile and loads it; a missing or broken profile
// is a usage error (run sekisho login first).
func loadProfile(flag string) (string, *client.Profile, *client.Client, error) {
	dir, err := profileDir(flag)
	if err != nil {
		return "", nil, nil, &usageError{err}
	}
	p, c, err := client.LoadProfile(dir)
	if err != nil {
		return "", nil, nil, &usageError{err}
	}
	return dir, p, c, nil
}
