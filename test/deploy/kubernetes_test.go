package deploy

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// rendered is what a kustomization produced, decoded into the API types.
type rendered struct {
	statefulSet    *appsv1.StatefulSet
	configMaps     map[string]*corev1.ConfigMap
	secrets        map[string]*corev1.Secret
	serviceAccount *corev1.ServiceAccount
	service        *corev1.Service
}

// decodeStrict decodes one Kubernetes object as the API server's strict field
// validation does: a field the API type does not have (a typo, a wrong case, a wrong
// level of indentation) or a duplicate key is an error. encoding/json alone would
// accept readOnlyRootFileSystem for readOnlyRootFilesystem.
func decodeStrict(doc []byte, into any) error {
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(data, into)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// render runs kustomize on dir and decodes every object strictly by kind.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	r := rendered{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, res := range resources.Resources() {
		doc, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var into any
		switch kind := res.GetKind(); kind {
		case "StatefulSet":
			r.statefulSet = &appsv1.StatefulSet{}
			into = r.statefulSet
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			r.configMaps[res.GetName()], into = cm, cm
		case "Secret":
			s := &corev1.Secret{}
			r.secrets[res.GetName()], into = s, s
		case "ServiceAccount":
			r.serviceAccount = &corev1.ServiceAccount{}
			into = r.serviceAccount
		case "Service":
			r.service = &corev1.Service{}
			into = r.service
		default:
			t.Fatalf("%s: unexpected kind %s (add it to this test)", dir, kind)
		}
		if err := decodeStrict(doc, into); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v\n%s", dir, res.GetKind(), res.GetName(), err, doc)
		}
	}
	if r.statefulSet == nil || r.serviceAccount == nil || r.service == nil {
		t.Fatalf("%s: want a StatefulSet, a ServiceAccount and a Service, got %+v", dir, r)
	}
	return r
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	for _, doc := range []string{
		"kind: StatefulSet\nspec:\n  replica: 1\n",
		"kind: StatefulSet\nspec:\n  serviceName: a\n  servicename: b\n",
		"kind: StatefulSet\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          securityContext:\n            readOnlyRootFileSystem: true\n",
		"kind: StatefulSet\nspec:\n  replicas: 1\n  replicas: 2\n",
	} {
		if err := decodeStrict([]byte(doc), &appsv1.StatefulSet{}); err == nil {
			t.Errorf("decoded without error, so the manifest checks would miss this mistake:\n%s", doc)
		}
	}
}

// TestKubernetesSourceFilesDecodeStrictly covers the patches too, which kustomize
// merges without checking them against the types.
func TestKubernetesSourceFilesDecodeStrictly(t *testing.T) {
	types := map[string]func() any{
		"StatefulSet":    func() any { return &appsv1.StatefulSet{} },
		"Secret":         func() any { return &corev1.Secret{} },
		"ServiceAccount": func() any { return &corev1.ServiceAccount{} },
		"Service":        func() any { return &corev1.Service{} },
	}
	files, err := filepath.Glob(repoPath("deploy", "kubernetes", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	top, _ := filepath.Glob(repoPath("deploy", "kubernetes", "*.yaml"))
	checked := 0
	for _, path := range append(files, top...) {
		base := filepath.Base(path)
		if base == "kustomization.yaml" || base == "collector-config.yaml" {
			continue
		}
		doc := readFile(t, path)
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		newObject, ok := types[meta.Kind]
		if !ok {
			t.Fatalf("%s: unexpected kind %q", path, meta.Kind)
		}
		if err := decodeStrict([]byte(doc), newObject()); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		checked++
	}
	if checked < 7 {
		t.Fatalf("checked only %d manifest files", checked)
	}
}

func TestKubernetesClientSecret(t *testing.T) {
	r := render(t, repoPath("deploy", "kubernetes"))
	config := checkStatefulSet(t, r)
	if want := readFile(t, repoPath("collector-config.yaml")); config != want {
		t.Error("deploy/kubernetes/collector-config.yaml differs from the production config: cp collector-config.yaml deploy/kubernetes/")
	}
	secret := r.secrets["otelcol-defender-ci"]
	for _, key := range []string{"MS_TENANT", "MS_CLIENT_ID", "MS_CLIENT_SECRET", "RF_API_KEY"} {
		if _, ok := secret.StringData[key]; !ok {
			t.Errorf("the Secret template has no %s", key)
		}
	}
	requireValid(t, config, map[string]string{"LISTEN_HOST": "10.1.2.3"})
}

func TestKubernetesAKSWorkloadIdentity(t *testing.T) {
	r := render(t, repoPath("deploy", "kubernetes", "aks-workload-identity"))
	config := checkStatefulSet(t, r)
	if got := r.statefulSet.Spec.Template.Labels["azure.workload.identity/use"]; got != "true" {
		t.Errorf("pod label azure.workload.identity/use = %q, want \"true\" (the webhook ignores the pod otherwise)", got)
	}
	if r.serviceAccount.Annotations["azure.workload.identity/client-id"] == "" {
		t.Error("the ServiceAccount has no azure.workload.identity/client-id annotation")
	}
	secret := r.secrets["otelcol-defender-ci"]
	if _, ok := secret.StringData["MS_CLIENT_SECRET"]; ok {
		t.Error("the workload identity variant still carries a Microsoft client secret")
	}
	// The production pipeline with only the receiver's credentials swapped.
	var aks, production map[string]any
	for _, c := range []struct {
		doc  string
		into *map[string]any
	}{{config, &aks}, {readFile(t, repoPath("collector-config.yaml")), &production}} {
		if err := yaml.Unmarshal([]byte(c.doc), c.into); err != nil {
			t.Fatal(err)
		}
	}
	receiver := aks["receivers"].(map[string]any)["m365_defender"].(map[string]any)
	if receiver["workload_identity"] == nil || receiver["client_secret"] != nil {
		t.Error("the workload identity config must use workload_identity and no client_secret")
	}
	for _, cfg := range []map[string]any{aks, production} {
		for _, key := range []string{"tenant_id", "client_id", "client_secret", "workload_identity"} {
			delete(cfg["receivers"].(map[string]any)["m365_defender"].(map[string]any), key)
		}
	}
	if !reflect.DeepEqual(aks, production) {
		t.Error("aks-workload-identity/collector-config.yaml must be the production config with only the receiver's credentials changed")
	}
	requireValid(t, config, map[string]string{"LISTEN_HOST": "10.1.2.3", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"})
}

// checkStatefulSet asserts what both variants share and returns the collector config
// the pod mounts.
func checkStatefulSet(t *testing.T, r rendered) string {
	t.Helper()
	sts := r.statefulSet
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1: a second replica would poll the same tenants with its own checkpoint", sts.Spec.Replicas)
	}
	if sts.Spec.ServiceName != r.service.Name {
		t.Errorf("serviceName %q is not the Service %q", sts.Spec.ServiceName, r.service.Name)
	}
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}

	// Configuration: the generated ConfigMap, mounted where args point.
	var configMap *corev1.ConfigMap
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			configMap = r.configMaps[v.ConfigMap.Name]
			if configMap == nil {
				t.Fatalf("volume %s refers to ConfigMap %s, which the kustomization does not produce", v.Name, v.ConfigMap.Name)
			}
			if want := filepath.Join(mounts[v.Name], "config.yaml"); !strings.Contains(strings.Join(c.Args, " "), want) {
				t.Errorf("args %v do not point at the mounted config %s", c.Args, want)
			}
		}
	}
	if configMap == nil {
		t.Fatal("no ConfigMap volume")
	}
	config := configMap.Data["config.yaml"]

	// State: the PVC from the claim template, where STORAGE_DIR points.
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one volumeClaimTemplate, got %d", len(sts.Spec.VolumeClaimTemplates))
	}
	claim := sts.Spec.VolumeClaimTemplates[0]
	if mounts[claim.Name] == "" || env["STORAGE_DIR"].Value != mounts[claim.Name] {
		t.Errorf("STORAGE_DIR %q is not where the PVC %q is mounted (%q)", env["STORAGE_DIR"].Value, claim.Name, mounts[claim.Name])
	}
	if claim.Spec.Resources.Requests.Storage().IsZero() {
		t.Error("the PVC requests no storage")
	}

	// Secrets: every variable the config reads without a default comes from the Secret
	// or from the pod's own env (or, with workload identity, the webhook).
	provided := map[string]bool{}
	for name := range env {
		provided[name] = true
	}
	for _, from := range c.EnvFrom {
		if from.SecretRef == nil {
			continue
		}
		secret := r.secrets[from.SecretRef.Name]
		if secret == nil {
			t.Fatalf("envFrom refers to Secret %s, which the kustomization does not produce", from.SecretRef.Name)
		}
		for key := range secret.StringData {
			provided[key] = true
		}
	}
	if r.statefulSet.Spec.Template.Labels["azure.workload.identity/use"] == "true" {
		provided["AZURE_TENANT_ID"], provided["AZURE_CLIENT_ID"], provided["AZURE_FEDERATED_TOKEN_FILE"] = true, true, true
	}
	for _, name := range envRefs(config, true) {
		if !provided[name] && !strings.Contains(config, "${env:"+name+":-") {
			t.Errorf("the config reads %s, which neither the Secret nor the pod provides", name)
		}
	}
	if env["LISTEN_HOST"].ValueFrom == nil || env["LISTEN_HOST"].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Error("LISTEN_HOST must be the pod IP: the kubelet probes the pod's address, not localhost")
	}

	// Probes on health_check.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !strings.Contains(config, fmt.Sprintf(":%d", ports["health"])) || ports["health"] != 13133 {
		t.Errorf("port health = %d is not health_check's port in the config", ports["health"])
	}
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.String() != "health" || probe.HTTPGet.Path != "/" {
			t.Errorf("%s probe must be GET / on port health (health_check), got %+v", name, probe)
		}
	}

	// Resources and GOMEMLIMIT.
	limit := c.Resources.Limits.Memory()
	if limit.IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Fatalf("resources must set requests.cpu, requests.memory and limits.memory: %+v", c.Resources)
	}
	goMemLimit, err := resource.ParseQuantity(strings.TrimSuffix(env["GOMEMLIMIT"].Value, "B"))
	if err != nil {
		t.Fatalf("GOMEMLIMIT %q: %v", env["GOMEMLIMIT"].Value, err)
	}
	if ratio := float64(goMemLimit.Value()) / float64(limit.Value()); ratio < 0.75 || ratio > 0.85 {
		t.Errorf("GOMEMLIMIT %s is %.0f %% of limits.memory %s, want about 80 %%", env["GOMEMLIMIT"].Value, ratio*100, limit)
	}

	// Restricted pod security standard.
	psc, sc := pod.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || sc == nil:
		t.Fatal("pod and container securityContext are required")
	case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0:
		t.Error("the pod must run as a non-root UID")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("the root file system must be read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation must be false")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
		t.Error("capabilities must drop ALL and add none")
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("seccomp profile must be RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the collector does not use the Kubernetes API: do not mount a token")
	}
	return config
}
