package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/client"
)

func newAPICmd() *cobra.Command {
	var profile, data string
	var headers []string
	var include bool
	cmd := &cobra.Command{
		Use:   "api METHOD PATH",
		Short: "Send one API request with the profile's device-bound credential",
		Long: `Send one request to the server of the profile, signed with its device key (a
DPoP-bound access token and a fresh proof), like gh api. The response body
goes to standard output; with --include, the status line and headers first,
as curl -i prints them.

Exit status: 0 for a 2xx answer, 1 for any other status, 2 for a bad command
line or profile, 4 when no answer came (the server could not be reached).`,
		Example: `  sekisho api GET /v1/whoami
  sekisho api POST /v1/collections/users/records --header 'Sekisho-Purpose: support' \
      --data '{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1234-5678"}}'
  sekisho api GET '/v1/collections/users/records/ID?fields=phone' -H 'Sekisho-Purpose: support' --include
  sekisho api POST /v1/grants --data @grant.json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			method, path := strings.ToUpper(args[0]), args[1]
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			dir, _, c, err := loadProfile(profile)
			if err != nil {
				return err
			}
			var body []byte
			switch {
			case strings.HasPrefix(data, "@"):
				if body, err = os.ReadFile(data[1:]); err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--data: %w", err)}
				}
			case data != "":
				body = []byte(data)
			}
			h := http.Header{}
			for _, kv := range headers {
				k, v, ok := strings.Cut(kv, ":")
				if !ok {
					return &exitError{code: exitUsage, err: fmt.Errorf("--header %q: want 'Name: value'", kv)}
				}
				h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			resp, err := c.Do(cmd.Context(), method, path, body, h)
			if err != nil {
				var p *client.Problem
				if errors.As(err, &p) { // the token request itself was refused
					return fmt.Errorf("could not get an access token: %w", err)
				}
				return err // unreachable: exit 4
			}
			defer resp.Body.Close()
			client.SaveToken(dir, c) // keep the (possibly refreshed) token; a failure only costs a refresh
			out := cmd.OutOrStdout()
			if include {
				fmt.Fprintf(out, "%s %s\r\n", resp.Proto, resp.Status)
				keys := make([]string, 0, len(resp.Header))
				for k := range resp.Header {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					for _, v := range resp.Header[k] {
						fmt.Fprintf(out, "%s: %s\r\n", k, v)
					}
				}
				fmt.Fprint(out, "\r\n")
			}
			if _, err := io.Copy(out, resp.Body); err != nil {
				return &client.UnreachableError{Server: c.Server, Err: err}
			}
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return &exitError{code: exitRefused}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&profile, "profile", "", "profile directory (default: $SEKISHO_PROFILE or sekisho under the user config directory)")
	f.StringVarP(&data, "data", "d", "", "request body: JSON, or @FILE")
	f.StringArrayVarP(&headers, "header", "H", nil, "extra header 'Name: value' (repeatable)")
	f.BoolVarP(&include, "include", "i", false, "print the status line and headers before the body")
	return cmd
}
