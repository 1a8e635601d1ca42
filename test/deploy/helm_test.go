package deploy

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// helmValues returns what Helm validates against the chart's schema: the user's values
// merged over the chart's defaults (maps merge key by key, anything else replaces, null
// deletes), decoded as JSON numbers the schema library expects.
func helmValues(t *testing.T, doc []byte) any {
	t.Helper()
	var defaults, user map[string]any
	for _, in := range []struct {
		doc  []byte
		into *map[string]any
	}{{[]byte(readFile(t, repoPath("deploy", "helm", "testdata", "chart-values.yaml"))), &defaults}, {doc, &user}} {
		data, err := yaml.YAMLToJSONStrict(in.doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, in.into); err != nil {
			t.Fatal(err)
		}
	}
	merged, err := json.Marshal(coalesce(defaults, user))
	if err != nil {
		t.Fatal(err)
	}
	values, err := jsonschema.UnmarshalJSON(bytes.NewReader(merged))
	if err != nil {
		t.Fatal(err)
	}
	return values
}

// coalesce merges user over defaults as Helm's chartutil.CoalesceTables does.
func coalesce(defaults, user map[string]any) map[string]any {
	out := maps.Clone(defaults)
	for key, value := range user {
		sub, userIsMap := value.(map[string]any)
		base, defaultIsMap := out[key].(map[string]any)
		switch {
		case value == nil:
			delete(out, key)
		case userIsMap && defaultIsMap:
			out[key] = coalesce(base, sub)
		default:
			out[key] = value
		}
	}
	return out
}

func chartSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	schema, err := jsonschema.NewCompiler().Compile(repoPath("deploy", "helm", "testdata", "values.schema.json"))
	if err != nil {
		t.Fatalf("compiling the chart's values.schema.json: %v", err)
	}
	return schema
}

func TestHelmValuesMatchChartSchema(t *testing.T) {
	schema := chartSchema(t)
	if err := schema.Validate(helmValues(t, []byte(readFile(t, repoPath("deploy", "helm", "values.yaml"))))); err != nil {
		t.Fatalf("deploy/helm/values.yaml does not validate against the chart's values.schema.json:\n%v", err)
	}
	// The schema must be able to fail: a key the chart does not know, a wrong type.
	for _, bad := range []string{"mode: statefulset\nreplicas: 1\n", "mode: statefulset\nuseGOMEMLIMIT: \"yes\"\n", "mode: sidecar\n"} {
		if schema.Validate(helmValues(t, []byte(bad))) == nil {
			t.Errorf("the schema accepted invalid values:\n%s", bad)
		}
	}
}

// helmSpec is the part of the values this test reasons about.
type helmSpec struct {
	Mode            string
	ReplicaCount    int
	AlternateConfig map[string]any
	Command         struct{ Name string }
	ExtraEnvs       []struct {
		Name, Value string
		ValueFrom   *struct{ FieldRef struct{ FieldPath string } }
	}
	ExtraEnvsFrom []struct{ SecretRef struct{ Name string } }
	Statefulset   struct {
		VolumeClaimTemplates []struct{ Metadata struct{ Name string } }
	}
	ExtraVolumeMounts []struct{ Name, MountPath string }
	UseGOMEMLIMIT     bool
	Resources         struct{ Limits map[string]string }
	SecurityContext   struct {
		ReadOnlyRootFilesystem, AllowPrivilegeEscalation, RunAsNonRoot *bool
	}
}

func TestHelmValuesDeployTheProductionPipeline(t *testing.T) {
	var v helmSpec
	if err := yaml.Unmarshal([]byte(readFile(t, repoPath("deploy", "helm", "values.yaml"))), &v); err != nil {
		t.Fatal(err)
	}
	if v.Mode != "statefulset" || v.ReplicaCount != 1 {
		t.Errorf("mode %q with %d replicas, want statefulset with 1", v.Mode, v.ReplicaCount)
	}
	if v.Command.Name != "otelcol-defender-ci" {
		t.Errorf("command.name = %q: the chart runs /<command.name>, the image's binary is /otelcol-defender-ci", v.Command.Name)
	}

	// alternateConfig replaces the chart's default config; it is the production config.
	var production map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, repoPath("collector-config.yaml"))), &production); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.AlternateConfig, production) {
		t.Error("alternateConfig differs from the production collector-config.yaml: copy it again (indented by two spaces)")
	}
	config, err := yaml.Marshal(v.AlternateConfig)
	if err != nil {
		t.Fatal(err)
	}
	requireValid(t, string(config), map[string]string{"LISTEN_HOST": "10.1.2.3"})

	env := map[string]string{}
	for _, e := range v.ExtraEnvs {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["LISTEN_HOST"] != "status.podIP" {
		t.Error("LISTEN_HOST must be the pod IP, where the chart's probes connect")
	}
	if len(v.ExtraEnvsFrom) != 1 || v.ExtraEnvsFrom[0].SecretRef.Name == "" {
		t.Error("the secrets must come from one Secret (extraEnvsFrom)")
	}
	if len(v.Statefulset.VolumeClaimTemplates) != 1 || len(v.ExtraVolumeMounts) != 1 ||
		v.ExtraVolumeMounts[0].Name != v.Statefulset.VolumeClaimTemplates[0].Metadata.Name ||
		v.ExtraVolumeMounts[0].MountPath != env["STORAGE_DIR"] {
		t.Errorf("STORAGE_DIR %q must be the mount path of the StatefulSet's claim template", env["STORAGE_DIR"])
	}
	if !v.UseGOMEMLIMIT || v.Resources.Limits["memory"] == "" {
		t.Error("set resources.limits.memory and useGOMEMLIMIT (the chart then sets GOMEMLIMIT to 80 % of it)")
	}
	sc := v.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("securityContext must be restricted: read-only root, no privilege escalation, non-root")
	}
}
