package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition (RFC 7515)
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"
)

// The client credentials grant accepts, besides a client secret, a signed
// JWT as client_assertion (client_assertion_type jwt-bearer), as Microsoft
// Entra ID does for two kinds of application credential:
//   - a certificate registered on the application: the JWT names it by its
//     thumbprint (x5t#S256, or x5t for SHA-1) and is signed with its key
//     (PS256 or RS256); iss and sub are the client id, aud the token endpoint;
//   - a federated identity credential (workload identity): the JWT is a
//     token of a trusted issuer (here the emulator's own, standing in for a
//     Kubernetes cluster's OIDC issuer) with the registered subject and the
//     audience api://AzureADTokenExchange.
const (
	jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	federatedAudience      = "api://AzureADTokenExchange"
	// FederatedSubject is the service account the federated identity
	// credential trusts, as AKS workload identity names it.
	FederatedSubject = "system:serviceaccount:otel:otelcol-defender-ci"
	// assertionSkew is the clock skew tolerated on exp and nbf.
	assertionSkew = 5 * time.Minute
)

// credentialKeys holds the application's registered certificate and the
// federation issuer's signing key. They are made on first use (two RSA keys
// cost tens of milliseconds, and most emulators never need them).
type credentialKeys struct {
	clientCert    *x509.Certificate
	clientCertPEM []byte // certificate and PKCS#8 key, as client_certificate_path reads it
	federationKey *rsa.PrivateKey
}

func newCredentialKeys() (*credentialKeys, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "otelcol-defender-ci emulator client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create client certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	federationKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &credentialKeys{
		clientCert: cert,
		clientCertPEM: slices.Concat(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		federationKey: federationKey,
	}, nil
}

// ClientCertificatePEM is the certificate registered on the application and
// its private key (PEM, unencrypted PKCS#8): what the receiver's
// client_certificate_path points at.
func (e *Emulator) ClientCertificatePEM() []byte { return e.credentialKeys().clientCertPEM }

// credentialKeys returns the keys, making them on first use.
func (e *Emulator) credentialKeys() *credentialKeys {
	e.keysOnce.Do(func() {
		keys, err := newCredentialKeys()
		if err != nil {
			panic(fmt.Sprintf("emulator: making credential keys: %v", err)) // crypto/rand failed
		}
		e.keys = keys
	})
	return e.keys
}

// WriteClientCertificate writes ClientCertificatePEM to path (mode 0600).
func (e *Emulator) WriteClientCertificate(path string) error {
	return os.WriteFile(path, e.credentialKeys().clientCertPEM, 0o600)
}

// FederationIssuer is the issuer of FederatedToken, trusted by the
// application's federated identity credential.
func (e *Emulator) FederationIssuer() string { return e.identityURL + "/federation" }

// FederatedToken returns a service account token, valid for lifetime, that
// the token endpoint accepts as client_assertion: what AKS projects into
// the file named by AZURE_FEDERATED_TOKEN_FILE.
func (e *Emulator) FederatedToken(lifetime time.Duration) string {
	now := time.Now()
	return signJWT(e.credentialKeys().federationKey, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "emulator-federation"}, map[string]any{
		"iss": e.FederationIssuer(), "sub": FederatedSubject, "aud": []string{federatedAudience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(lifetime).Unix(),
	})
}

// WriteFederatedToken writes a FederatedToken valid for an hour to path.
func (e *Emulator) WriteFederatedToken(path string) error {
	return os.WriteFile(path, []byte(e.FederatedToken(time.Hour)), 0o600)
}

// signJWT signs an RS256 JWT; only the emulator's own tokens are signed here.
func signJWT(key *rsa.PrivateKey, header, claims map[string]any) string {
	h, _ := json.Marshal(header) // plain maps of strings and numbers: cannot fail
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		panic(fmt.Sprintf("emulator: signing a JWT: %v", err))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// assertionError is a refused client assertion, with the AADSTS code and
// description Entra ID answers.
type assertionError struct {
	aadsts      int
	description string
}

func (a *assertionError) Error() string { return a.description }

func refuse(aadsts int, format string, args ...any) error {
	return &assertionError{aadsts: aadsts, description: fmt.Sprintf(format, args...)}
}

// jwt is a decoded compact JWS.
type jwt struct {
	header struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"` // a string or an array of strings
		Exp json.Number     `json:"exp"`
		Nbf json.Number     `json:"nbf"`
		Jti string          `json:"jti"`
	}
	signingInput, signature []byte
}

func parseJWT(s string) (*jwt, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	var t jwt
	for i, target := range []any{&t.header, &t.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("part %d is not base64url: %w", i, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(target); err != nil {
			return nil, fmt.Errorf("part %d is not a JSON object: %w", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature is not base64url: %w", err)
	}
	t.signingInput, t.signature = []byte(parts[0]+"."+parts[1]), sig
	return &t, nil
}

func (t *jwt) verify(pub *rsa.PublicKey) error {
	digest := sha256.Sum256(t.signingInput)
	switch t.header.Alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], t.signature)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], t.signature, nil)
	}
	return fmt.Errorf("unsupported alg %q", t.header.Alg)
}

func (t *jwt) audiences() []string {
	var one string
	if json.Unmarshal(t.claims.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(t.claims.Aud, &many)
	return many
}

// checkTimes checks exp (required) and nbf (optional) with some skew.
func (t *jwt) checkTimes(now time.Time) error {
	exp, err := t.claims.Exp.Int64()
	if err != nil {
		return refuse(700024, "Client assertion contains no valid exp claim.")
	}
	if now.After(time.Unix(exp, 0).Add(assertionSkew)) {
		return refuse(700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid to: %s.", now.UTC().Format(time.RFC3339), time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	if t.claims.Nbf != "" {
		if nbf, err := t.claims.Nbf.Int64(); err != nil || now.Add(assertionSkew).Before(time.Unix(nbf, 0)) {
			return refuse(700024, "Client assertion is not within its valid time range (nbf).")
		}
	}
	return nil
}

// checkAssertion verifies a client_assertion for clientID and returns the
// credential kind it proves: "certificate" or "workload_identity".
func (e *Emulator) checkAssertion(assertion, clientID, tokenEndpoint string, now time.Time) (string, error) {
	t, err := parseJWT(assertion)
	if err != nil {
		return "", refuse(50027, "JWT token is invalid or malformed: %v.", err)
	}
	if t.header.X5t != "" || t.header.X5tS256 != "" {
		return "certificate", e.checkCertificateAssertion(t, clientID, tokenEndpoint, now)
	}
	return "workload_identity", e.checkFederatedAssertion(t, now)
}

func (e *Emulator) checkCertificateAssertion(t *jwt, clientID, tokenEndpoint string, now time.Time) error {
	cert := e.credentialKeys().clientCert
	sha1Sum, sha256Sum := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw) //nolint:gosec // thumbprint, not a signature
	if !thumbprintMatches(t.header.X5tS256, sha256Sum[:]) && !thumbprintMatches(t.header.X5t, sha1Sum[:]) {
		return refuse(700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]")
	}
	if err := t.verify(cert.PublicKey.(*rsa.PublicKey)); err != nil {
		return refuse(700027, "Client assertion failed signature validation.")
	}
	if t.claims.Iss != clientID || t.claims.Sub != clientID {
		return refuse(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
	}
	if !slices.Contains(t.audiences(), tokenEndpoint) {
		return refuse(700212, "Client assertion audience claim does not match the token endpoint %s.", tokenEndpoint)
	}
	if t.claims.Jti == "" {
		return refuse(50027, "JWT token is invalid or malformed: no jti claim.")
	}
	return t.checkTimes(now)
}

// thumbprintMatches compares an x5t header, base64 of either alphabet as
// clients differ (MSAL sends standard base64), with a digest.
func thumbprintMatches(header string, digest []byte) bool {
	if header == "" {
		return false
	}
	trimmed := strings.TrimRight(header, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(trimmed); err == nil && string(b) == string(digest) {
			return true
		}
	}
	return false
}

func (e *Emulator) checkFederatedAssertion(t *jwt, now time.Time) error {
	if t.claims.Iss != e.FederationIssuer() || t.claims.Sub != FederatedSubject || !slices.Contains(t.audiences(), federatedAudience) {
		return refuse(70021, "No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'.", t.claims.Iss, t.claims.Sub, strings.Join(t.audiences(), ","))
	}
	if err := t.verify(&e.credentialKeys().federationKey.PublicKey); err != nil {
		return refuse(700027, "Client assertion failed signature validation.")
	}
	return t.checkTimes(now)
}
