package trust

// SystemFiles are the system bundles Go's crypto/x509 looks for on Linux
// (src/crypto/x509/root_linux.go), in the same order: the first that exists
// holds the system roots.
var SystemFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian/Ubuntu/Gentoo etc.
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora/RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // OpenSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS/RHEL 7, UBI
	"/etc/ssl/cert.pem",                                 // Alpine Linux
}
