// Package trust builds a combined CA bundle: it reads extra CA certificates
// from files and folders as OpenSSL reads a CA file (PEM with any of its
// certificate block types, DER, PKCS#7), reads the system roots, and writes
// the system roots followed by the extra CAs as one clean PEM file,
// atomically. Its errors and warnings name the files they are about; what
// the files are called in a configuration is the caller's business.
package trust
