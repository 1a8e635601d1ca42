// Package emulator is a local stand-in for the three services this project
// talks to: the Microsoft identity platform (client credentials token
// endpoint and OpenID configuration), the Microsoft Graph security API
// (alerts_v2 and incidents) and Recorded Future Collective Insights. Unit
// tests, the end-to-end and fault suites, make demo and make bench all use
// it; cmd/emulator wraps it as a program.
//
// New generates a deterministic, realistic dataset and serves it over TLS
// on 127.0.0.1 with certificates from an in-memory CA (CACertPEM). The
// dataset knows what it planted: Expected is the oracle of indicators that
// must reach Collective Insights, Forbidden the values that must never, and
// Submissions what actually arrived. Faults are injected with SetFaults.
//
// # Indicator fields
//
// Expected reports each indicator's Field as the property path inside its
// evidence item (or alert) that the value came from, exactly as DESIGN.md
// names them:
//
//	fileEvidence               fileDetails.sha256, fileDetails.sha1
//	fileHashEvidence           value
//	processEvidence            imageFile.sha256, imageFile.sha1
//	ipEvidence                 ipAddress
//	networkConnectionEvidence  destinationAddress (Graph nests an ipEvidence there:
//	                           the value is destinationAddress.ipAddress)
//	dnsEvidence                domainName
//	urlEvidence                url, and url.host for the domain or IP of its host
//	analyzedMessageEvidence    senderIp, urls (each URL), urls.host (each URL's host)
//	alert                      title, description (CVE ids)
//
// Values are normalised as DESIGN.md prescribes: trimmed, hashes and domains
// lower-case, URL scheme and host lower-case, userinfo removed, the rest of
// the URL as sent. Within one alert a (type, value) is planted once, so its
// field is unambiguous; across alerts values repeat, as in real tenants.
//
// # Graph
//
// Alerts are kept sorted by lastUpdateDateTime, so a window is found by
// binary search. A realistic alert is about 3 kB of JSON, 1 GB for the
// 300,000-alert backlog of make bench; so the store keeps only what queries
// need and each alert's generation plan, and regenerates the JSON when it is
// served (about 20 µs per alert and core, far above the 5,000 alerts/s the
// bench needs; 300,000 alerts take about 250 MB). An alert that changed
// keeps its re-encoded JSON.
//
// $top defaults to its maximum, 1000 alerts or 50 incidents; a larger value
// is a 400, as are unsupported query options and $filter clauses, and
// $orderby on incidents (their reference documents only $count, $filter,
// $skip, $top and $expand). The first
// page of a query fixes its result set; later pages ($skiptoken) come from
// it, re-checking each alert against the filter so an alert that changed
// meanwhile and left the window is omitted. @odata.nextLink precedes value,
// as in Graph. Without Prefer: include-unknown-enum-members, serviceSource
// and detectionSource members newer than unknownFutureValue are replaced by
// it, as Graph does.
//
// # Credentials
//
// The token endpoint runs the client credentials grant with the client
// secret, or with a client_assertion: a JWT signed with the key of the
// certificate registered on the application (ClientCertificatePEM; PS256 or
// RS256, named by x5t#S256 or x5t, aud the token endpoint), or a federated
// service account token (FederatedToken, what AKS workload identity
// projects). Signatures, thumbprints, issuer, subject, audience and expiry
// are verified, and refusals carry Entra ID's AADSTS codes. Managed identity
// is served as App Service serves it, plain HTTP on loopback: set
// IDENTITY_ENDPOINT to ManagedIdentityEndpoint and IDENTITY_HEADER to
// ManagedIdentityHeader (azidentity's IMDS address is fixed and cannot be
// redirected). Stats.TokensIssuedBy tells which credential got each token.
//
// # Graph faults
//
// Besides throttling, errors and slowness, the emulator can misbehave the
// way production Graph has been seen to (Faults): ignore $filter or $top,
// hand out a nextLink that points at its own page, serve a page beyond a
// client's size limit, serve one alert as JSON nothing can decode (an
// unescaped Windows path after its id and lastUpdateDateTime), and keep
// failing the one window that holds a given instant.
//
// # Several tenants
//
// Config.Tenants adds Microsoft tenants served on the same identity and Graph
// hosts, as Entra ID and Graph serve every customer of a managed security
// service provider: the token endpoint routes by the tenant in its path,
// Graph by the tenant that issued the bearer token. Each tenant has its own
// credentials, dataset, tokens, faults and Graph statistics (Tenant returns
// its Emulator); Collective Insights is shared, and SubmissionsFor returns
// what arrived for one organisation.
//
// # Collective Insights
//
// Request bodies are validated strictly (unknown keys, nulls, types, value
// plausibility per ioc.type); a bad body is answered 400 with a message
// naming the entry index and the problem. Accepted entries are all kept: it
// is a test tool.
//
// The emulator is not a security boundary: it is meant for loopback tests
// only.
package emulator
