package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/sekisho/sekisho/audit/export"
	"github.com/sekisho/sekisho/report"
)

// fileConfig is the configuration file of serve and import (--config FILE):
// the same settings as the flags, plus the region-to-store map that has no
// flag form. A flag given on the command line wins over the file.
//
//	addr: 127.0.0.1:8700
//	data: /var/lib/sekisho
//	store: postgres://sekisho@db-global/sekisho
//	regions:
//	  jp: postgres://sekisho@db-tokyo/sekisho
//	  th: postgres://sekisho@db-bangkok/sekisho
type fileConfig struct {
	Addr               string            `yaml:"addr"`
	Data               string            `yaml:"data"`
	Store              string            `yaml:"store"`
	MasterKeyFile      string            `yaml:"master_key_file"`
	Org                string            `yaml:"org"`
	Region             string            `yaml:"region"`
	CheckpointInterval string            `yaml:"checkpoint_interval"`
	LogFormat          string            `yaml:"log_format"`
	WitnessDir         string            `yaml:"witness_dir"`
	LogOrigin          string            `yaml:"log_origin"`
	MetricsAddr        string            `yaml:"metrics_addr"`
	TLSCert            string            `yaml:"tls_cert"`
	TLSKey             string            `yaml:"tls_key"`
	PublicURL          string            `yaml:"public_url"`
	TrustedProxies     string            `yaml:"trusted_proxies"`
	DPoPNonce          string            `yaml:"dpop_nonce"`
	ClientCA           string            `yaml:"client_ca"`
	OTLPEndpoint       string            `yaml:"otlp_endpoint"`
	Regions            map[string]string `yaml:"regions"`
	RetentionInterval  string            `yaml:"retention_interval"`
	// SQLiteCacheMiB is serve's --sqlite-cache-mib (README "Memory budget").
	SQLiteCacheMiB string `yaml:"sqlite_cache_mib"`
	// DeviceRequirementDefault and TPMEKRoots are serve's
	// --device-requirement-default and --tpm-ek-roots (issue 16).
	DeviceRequirementDefault string `yaml:"device_requirement_default"`
	TPMEKRoots               string `yaml:"tpm_ek_roots"`
	// OIDCIssuer, OIDCClientID and OIDCMapping are serve's --oidc-issuer,
	// --oidc-client-id and --oidc-mapping (single sign-on, issue 16).
	OIDCIssuer   string `yaml:"oidc_issuer"`
	OIDCClientID string `yaml:"oidc_client_id"`
	OIDCMapping  string `yaml:"oidc_mapping"`
	// WebAuthnOrigin (comma-separated), WebAuthnRPID and
	// WebAuthnAttestationRoots are serve's --webauthn-origin,
	// --webauthn-rp-id and --webauthn-attestation-roots (passkeys, issue 16).
	WebAuthnOrigin           string `yaml:"webauthn_origin"`
	WebAuthnRPID             string `yaml:"webauthn_rp_id"`
	WebAuthnAttestationRoots string `yaml:"webauthn_attestation_roots"`
	// WebAuthnSessionTTL is serve's --webauthn-session-ttl (a duration).
	WebAuthnSessionTTL string `yaml:"webauthn_session_ttl"`
	// Controller names the business operator in every report (serve's API
	// and the offline report commands).
	Controller report.Controller `yaml:"controller"`
	// Keys is the key provider (keys: section); RegionKeys the providers
	// of regions that have their own (regions: {jp: {store: ..., keys: ...}}).
	Keys       keysConfig            `yaml:"keys"`
	RegionKeys map[string]keysConfig `yaml:"-"`
	// AuditExport streams the audit logs to outside sinks (serve only).
	AuditExport auditExportConfig `yaml:"audit_export"`
}

// auditExportConfig is the audit_export: section: the sinks, and where
// their cursors are kept (default DATA/audit-export).
//
//	audit_export:
//	  sinks:
//	    - {name: siem, type: json-lines, address: siem.example:6514, ca_file: /etc/sekisho/siem-ca.pem}
//	    - {name: rsyslog, type: syslog, address: logs.example:6514}
//	    - {name: otel, type: otlp, endpoint: https://collector.example:4318/v1/logs}
type auditExportConfig struct {
	CursorDir string          `yaml:"cursor_dir"`
	Sinks     []export.Config `yaml:"sinks"`
}

// configAuditExport returns the audit_export section of the configuration
// file at path (none when path is "").
func configAuditExport(path string) (auditExportConfig, error) {
	if path == "" {
		return auditExportConfig{}, nil
	}
	c, err := loadConfig(path)
	if err != nil {
		return auditExportConfig{}, err
	}
	return c.AuditExport, nil
}

// loadConfig reads a configuration file strictly: an unknown key is an
// error, so that a typo cannot silently drop a setting.
func loadConfig(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	regionKeys, b, err := splitRegions(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var c fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err != io.EOF {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.RegionKeys = regionKeys
	return &c, nil
}

// splitRegions reads the long form of a region, {store: URL, keys: {...}},
// into its key provider, and leaves the plain form (region: URL) in the
// document for the strict decoder. A region with keys and no store keeps
// its records in the default store.
func splitRegions(b []byte) (map[string]keysConfig, []byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, b, nil
	}
	top := doc.Content[0]
	out := map[string]keysConfig{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "regions" || top.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		regions := top.Content[i+1]
		var keep []*yaml.Node
		for j := 0; j+1 < len(regions.Content); j += 2 {
			name, val := regions.Content[j], regions.Content[j+1]
			if val.Kind != yaml.MappingNode {
				keep = append(keep, name, val)
				continue
			}
			var rc struct {
				Store string     `yaml:"store"`
				Keys  keysConfig `yaml:"keys"`
			}
			if err := decodeStrict(val, &rc); err != nil {
				return nil, nil, fmt.Errorf("regions: %s: %w", name.Value, err)
			}
			if rc.Keys != (keysConfig{}) {
				out[name.Value] = rc.Keys
			}
			if rc.Store != "" {
				keep = append(keep, name, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: rc.Store})
			}
		}
		regions.Content = keep
	}
	if len(out) == 0 {
		out = nil
	}
	nb, err := yaml.Marshal(&doc)
	return out, nb, err
}

// decodeStrict decodes a node refusing unknown keys (Node.Decode alone
// would ignore them).
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// applyConfig sets every flag the command line did not set from the file.
func applyConfig(fs *pflag.FlagSet, c *fileConfig) error {
	for name, val := range map[string]string{
		"addr": c.Addr, "data": c.Data, "store": c.Store, "master-key-file": c.MasterKeyFile,
		"org": c.Org, "region": c.Region, "checkpoint-interval": c.CheckpointInterval, "log-format": c.LogFormat, "witness-dir": c.WitnessDir,
		"tls-cert": c.TLSCert, "tls-key": c.TLSKey, "public-url": c.PublicURL, "trusted-proxies": c.TrustedProxies, "dpop-nonce": c.DPoPNonce, "client-ca": c.ClientCA, "otlp-endpoint": c.OTLPEndpoint,
		"metrics-addr":       c.MetricsAddr,
		"retention-interval": c.RetentionInterval,
		"sqlite-cache-mib":   c.SQLiteCacheMiB,
		"log-origin":         c.LogOrigin,
		"key-provider":       c.Keys.Provider, "pkcs11-module": c.Keys.Module, "pkcs11-token": c.Keys.TokenLabel, "pkcs11-pin-file": c.Keys.PINFile,
		"dek-cache-size": c.Keys.CacheSize, "dek-cache-ttl": c.Keys.CacheTTL,
		"device-requirement-default": c.DeviceRequirementDefault, "tpm-ek-roots": c.TPMEKRoots,
		"oidc-issuer": c.OIDCIssuer, "oidc-client-id": c.OIDCClientID, "oidc-mapping": c.OIDCMapping,
		"webauthn-origin": c.WebAuthnOrigin, "webauthn-rp-id": c.WebAuthnRPID, "webauthn-attestation-roots": c.WebAuthnAttestationRoots,
		"webauthn-session-ttl": c.WebAuthnSessionTTL,
	} {
		f := fs.Lookup(name)
		if val == "" || f == nil || f.Changed {
			continue
		}
		if err := f.Value.Set(val); err != nil {
			return fmt.Errorf("config %s: %w", name, err)
		}
	}
	return nil
}

// fromConfigFile applies the configuration file at path (if any) to the
// flags of cmd that the command line did not set, and returns its regions.
func fromConfigFile(cmd *cobra.Command, path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	c, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	if err := applyConfig(cmd.Flags(), c); err != nil {
		return nil, err
	}
	return c.Regions, nil
}

// configController returns the controller section of the configuration file
// at path (an empty controller when path is "").
func configController(path string) (report.Controller, error) {
	if path == "" {
		return report.Controller{}, nil
	}
	c, err := loadConfig(path)
	if err != nil {
		return report.Controller{}, err
	}
	if err := c.Controller.Validate(); err != nil {
		return report.Controller{}, fmt.Errorf("config %s: controller: %w", path, err)
	}
	return c.Controller, nil
}
