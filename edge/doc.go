// Package edge is what sits between the network and the API: the TLS
// listener's configuration (TLS 1.2 at least, the server certificate
// reloaded from its files when they change, client certificates checked
// against --client-ca for certificate-bound tokens), the rule that refuses
// plain HTTP on anything but loopback, and the trusted proxies whose
// X-Forwarded-For or Forwarded header names the client's address.
package edge
