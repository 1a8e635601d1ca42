// Package deploy tests the deployment artifacts in deploy/ and examples/ (make
// deploy-test): the Kubernetes manifests decode strictly into the k8s.io/api types, the
// Helm values validate against the upstream chart's schema, the systemd unit passes
// systemd-analyze, and every collector config they carry passes the built binary's
// validate subcommand (OTELCOL_BINARY).
//
// It is a module of its own so that the Kubernetes, kustomize and JSON-schema libraries
// stay out of the distribution's module graph: the collector is built with ocb from the
// root module, whose requirements take part in its version selection.
package deploy
