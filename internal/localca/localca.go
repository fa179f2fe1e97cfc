// Package localca is the grid's own small certificate authority: an ECDSA
// P-256 root kept in two files, and leaf certificates it signs for the
// names the grid serves (*.<domain> for apps, the API's host). Users trust
// the root once (curl --cacert DATA/ca/ca.pem, NODE_EXTRA_CA_CERTS,
// GIT_SSL_CAINFO) instead of accepting self-signed certificates.
//
// It knows nothing of the store or of who serves the certificates. It
// must never write the root's private key anywhere but its 0600 file, and
// never log a key.
package localca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names in a CA directory.
const (
	CertFile = "ca.pem"
	KeyFile  = "ca-key.pem"
)

// Validity periods. Leaves stay within the 398 days browsers accept.
const (
	rootValidity = 10 * 365 * 24 * time.Hour
	LeafValidity = 397 * 24 * time.Hour
	// backdate covers clocks a little behind ours.
	backdate = time.Hour
)

// CA is a root certificate and its key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// Ensure loads the CA in dir, or creates it there (dir 0700, key file
// 0600) when there is none, so a grid keeps one root across restarts and
// users trust it once. A directory holding only one of the two files is
// an error, never overwritten.
func Ensure(dir string, now time.Time) (*CA, error) {
	ca, err := Load(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return ca, err
	}
	_, cerr := os.Stat(filepath.Join(dir, CertFile))
	_, kerr := os.Stat(filepath.Join(dir, KeyFile))
	if cerr == nil || kerr == nil {
		return nil, fmt.Errorf("localca: %s has only one of %s and %s; restore the other or remove both", dir, CertFile, KeyFile)
	}
	return create(dir, now)
}

// Load reads the CA in dir. fs.ErrNotExist when there is none.
func Load(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, err
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("localca: %s: %w", CertFile, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("localca: %s: %w", KeyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("localca: %s does not belong to %s", KeyFile, CertFile)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

func create(dir string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Dynogrid"}, CommonName: "Dynogrid local CA " + now.UTC().Format("2006-01-02")},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The key first: a crash between the writes leaves a key without a
	// certificate, which Ensure reports instead of silently replacing.
	if err := writeFile(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

// writeFile writes data to path atomically (a temporary file renamed over
// it), created with perm.
func writeFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Issue signs a new leaf certificate for names: DNS names (wildcards
// like "*.localhost" included) and IP addresses, for TLS servers. It
// returns the PEM certificate and the PEM PKCS #8 private key of a fresh
// ECDSA P-256 key, valid from now for LeafValidity.
func (ca *CA) Issue(names []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("localca: a certificate needs at least one name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"Dynogrid"}, CommonName: names[0]},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Fresh reports whether certPEM was signed by ca, covers every one of
// names and stays valid for at least another quarter of LeafValidity:
// whether a server may keep serving it rather than issue a new one.
func (ca *CA) Fresh(certPEM []byte, names []string, now time.Time) bool {
	cert, err := parseCert(certPEM)
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil {
		return false
	}
	if now.Before(cert.NotBefore) || now.Add(LeafValidity/4).After(cert.NotAfter) {
		return false
	}
	for _, n := range names {
		if !hasName(cert, n) {
			return false
		}
	}
	return true
}

// hasName reports whether n is literally one of cert's names (not merely
// matched by a wildcard: "*.localhost" must be there itself).
func hasName(cert *x509.Certificate, n string) bool {
	if ip := net.ParseIP(n); ip != nil {
		for _, have := range cert.IPAddresses {
			if have.Equal(ip) {
				return true
			}
		}
		return false
	}
	for _, have := range cert.DNSNames {
		if have == n {
			return true
		}
	}
	return false
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

// serial is a random 128-bit serial number, as RFC 5280 recommends.
func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n
}
