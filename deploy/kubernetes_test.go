package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/deltaci/deltaci/internal/cli"
)

// scaledObject is KEDA's ScaledObject (keda.sh/v1alpha1), which has no Go
// types in k8s.io: the fields of KEDA's published CRD that a manifest may
// use, decoded as strictly as the official types. The HPA behavior is the
// official autoscaling/v2 type, as KEDA's CRD embeds it.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion             string `json:"apiVersion,omitempty"`
			Kind                   string `json:"kind,omitempty"`
			Name                   string `json:"name"`
			EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval       *int32 `json:"pollingInterval,omitempty"`
		InitialCooldownPeriod *int32 `json:"initialCooldownPeriod,omitempty"`
		CooldownPeriod        *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount      *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount       *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount       *int32 `json:"maxReplicaCount,omitempty"`
		Fallback              *struct {
			FailureThreshold int32  `json:"failureThreshold"`
			Replicas         int32  `json:"replicas"`
			Behavior         string `json:"behavior,omitempty"`
		} `json:"fallback,omitempty"`
		Advanced *struct {
			RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
			ScalingModifiers *struct {
				Formula          string `json:"formula,omitempty"`
				Target           string `json:"target,omitempty"`
				ActivationTarget string `json:"activationTarget,omitempty"`
				MetricType       string `json:"metricType,omitempty"`
			} `json:"scalingModifiers,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
			MetricType        string            `json:"metricType,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// prometheusTriggerKeys are the metadata keys KEDA's prometheus scaler
// reads.
var prometheusTriggerKeys = []string{"serverAddress", "query", "threshold", "activationThreshold", "namespace",
	"customHeaders", "ignoreNullValues", "queryParameters", "unsafeSsl", "timeout", "authModes"}

// kustomization is the part of kustomize's Kustomization these manifests
// use (kustomize's own types are not a dependency).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images"`
}

// kinds maps apiVersion/kind to a new value of its official type.
var kinds = map[string]func() any{
	"v1/Namespace":                                  func() any { return new(corev1.Namespace) },
	"v1/ConfigMap":                                  func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                                     func() any { return new(corev1.Secret) },
	"v1/Service":                                    func() any { return new(corev1.Service) },
	"apps/v1/Deployment":                            func() any { return new(appsv1.Deployment) },
	"batch/v1/Job":                                  func() any { return new(batchv1.Job) },
	"policy/v1/PodDisruptionBudget":                 func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":            func() any { return new(networkingv1.NetworkPolicy) },
	"autoscaling/v2/HorizontalPodAutoscaler":        func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"keda.sh/v1alpha1/ScaledObject":                 func() any { return new(scaledObject) },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return new(kustomization) },
}

// strictDecode decodes one YAML document into v, refusing unknown and
// duplicate fields.
func strictDecode(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// manifests decodes every document of every file under kubernetes/.
func manifests(t *testing.T) map[string][]any {
	t.Helper()
	out := map[string][]any{}
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Ext(path) != ".yaml" {
			return fmt.Errorf("%s: only .yaml manifests belong here", path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				return fmt.Errorf("%s document %d: %w", path, i+1, err)
			}
			mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
			if !ok {
				return fmt.Errorf("%s document %d: apiVersion %q kind %q is none the test knows", path, i+1, tm.APIVersion, tm.Kind)
			}
			v := mk()
			if err := strictDecode([]byte(doc), v); err != nil {
				return fmt.Errorf("%s document %d (%s): %w", path, i+1, tm.Kind, err)
			}
			out[tm.Kind] = append(out[tm.Kind], v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func one[T any](t *testing.T, m map[string][]any, kind, name string) *T {
	t.Helper()
	for _, v := range m[kind] {
		o := v.(*T)
		if meta, ok := any(o).(metav1.Object); ok && meta.GetName() == name {
			return o
		}
		if so, ok := any(o).(*scaledObject); ok && so.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s in kubernetes/", kind, name)
	return nil
}

// TestStrictDecodeRefusesUnknownFields: the decoding the manifests pass
// fails a misspelled field, so passing means something.
func TestStrictDecodeRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	for doc, want := range map[string]string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n":                                          `unknown field "replica"`,
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 1}], port: 2}\n":                                  `unknown field "port"`,
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n":                                                  `already set`,
		"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: x}, maxReplicas: 3}\n": `unknown field "maxReplicas"`,
	} {
		var tm metav1.TypeMeta
		_ = yaml.Unmarshal([]byte(doc), &tm)
		err := strictDecode([]byte(doc), kinds[tm.APIVersion+"/"+tm.Kind]())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decoding %q: %v, want an error with %q", doc, err, want)
		}
	}
}

// TestKubernetesManifests decodes every manifest strictly into the
// official Kubernetes API types, then checks what ties them together.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	m := manifests(t)

	server := one[appsv1.Deployment](t, m, "Deployment", "deltaci-server")
	runner := one[appsv1.Deployment](t, m, "Deployment", "deltaci-runner")
	migrate := one[batchv1.Job](t, m, "Job", "deltaci-migrate")
	for _, kind := range []string{"Deployment", "Job", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "Secret", "HorizontalPodAutoscaler", "ScaledObject"} {
		for _, v := range m[kind] {
			var ns string
			if o, ok := v.(metav1.Object); ok {
				ns = o.GetNamespace()
			} else {
				ns = v.(*scaledObject).Namespace
			}
			if ns != "deltaci" {
				t.Errorf("a %s is in namespace %q, want deltaci", kind, ns)
			}
		}
	}

	// The server: 2 replicas, probes on /readyz and /healthz.
	if server.Spec.Replicas == nil || *server.Spec.Replicas != 2 {
		t.Errorf("the server has %v replicas, want 2", server.Spec.Replicas)
	}
	sc := container(t, server.Spec.Template.Spec, "server")
	if p := sc.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("the server's readiness probe is %+v, want GET /readyz", p)
	}
	if p := sc.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("the server's liveness probe is %+v, want GET /healthz", p)
	}
	podLabels := labels.Set(server.Spec.Template.Labels)
	pdb := one[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", "deltaci-server")
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("the PodDisruptionBudget must keep 1 server pod available: %+v", pdb.Spec)
	}
	svc := one[corev1.Service](t, m, "Service", "deltaci-server")
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("the Service does not select the server pods' http port: %+v", svc.Spec)
	}

	// Every Deployment and Job: selectors match their pods, non-root,
	// images of the version kustomization.yaml sets, flags deltaci has,
	// and _FILE settings that name a key of a mounted secret.
	if len(m["Kustomization"]) != 1 {
		t.Fatalf("want one kustomization.yaml, have %d", len(m["Kustomization"]))
	}
	kust := m["Kustomization"][0].(*kustomization)
	tags := map[string]string{}
	for _, im := range kust.Images {
		tags[im.Name] = im.NewTag
	}
	pods := map[string]corev1.PodSpec{"deltaci-server": server.Spec.Template.Spec, "deltaci-runner": runner.Spec.Template.Spec, "deltaci-migrate": migrate.Spec.Template.Spec}
	for _, d := range []*appsv1.Deployment{server, runner} {
		if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: the selector does not match its pods", d.Name)
		}
	}
	for name, spec := range pods {
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
			t.Errorf("%s does not run as the images' non-root user 65532", name)
		}
		for _, c := range spec.Containers {
			image, tag, _ := strings.Cut(c.Image, ":")
			if want, ok := tags[image]; !ok || tag != want {
				t.Errorf("%s: image %s is not one kustomization.yaml sets (%v)", name, c.Image, tags)
			}
			checkFlags(t, name, c.Args)
			mounts := secretMounts(t, m, spec, c)
			for _, e := range c.Env {
				if strings.HasSuffix(e.Name, "_FILE") {
					if _, ok := mounts[e.Value]; !ok {
						t.Errorf("%s: %s=%s is no key of a mounted secret (%v)", name, e.Name, e.Value, mounts)
					}
				}
			}
			for _, a := range c.Args {
				if v, ok := strings.CutPrefix(a, "--signing-key="); ok {
					if _, ok := mounts[v]; !ok {
						t.Errorf("%s: %s is no key of a mounted secret", name, a)
					}
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					one[corev1.ConfigMap](t, m, "ConfigMap", ef.ConfigMapRef.Name)
				}
			}
		}
	}
	if args := container(t, migrate.Spec.Template.Spec, "migrate").Args; !slices.Equal(args, []string{"migrate"}) {
		t.Errorf("the migration Job runs %v, want deltaci migrate", args)
	}
	for _, r := range kust.Resources {
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}

	// The runner's autoscalers: both scale deltaci-runner on the queue
	// depth the server exports.
	metrics := definedMetrics(t)
	so := one[scaledObject](t, m, "ScaledObject", "deltaci-runner")
	if so.Spec.ScaleTargetRef.Name != runner.Name || so.Spec.ScaleTargetRef.Kind != "Deployment" || len(so.Spec.Triggers) != 1 {
		t.Errorf("the ScaledObject does not scale the runner Deployment by one trigger: %+v", so.Spec)
	} else if tr := so.Spec.Triggers[0]; tr.Type != "prometheus" {
		t.Errorf("the ScaledObject's trigger is %q, want prometheus", tr.Type)
	} else {
		for k := range tr.Metadata {
			if !slices.Contains(prometheusTriggerKeys, k) {
				t.Errorf("the prometheus trigger has metadata %q, which KEDA's prometheus scaler does not read", k)
			}
		}
		checkQuery(t, "the ScaledObject", tr.Metadata["query"], metrics)
		if !strings.Contains(tr.Metadata["query"], "deltaci_queue_depth") || tr.Metadata["threshold"] == "" || tr.Metadata["serverAddress"] == "" {
			t.Errorf("the trigger needs serverAddress, a query on deltaci_queue_depth and a threshold: %v", tr.Metadata)
		}
	}
	hpa := one[autoscalingv2.HorizontalPodAutoscaler](t, m, "HorizontalPodAutoscaler", "deltaci-runner")
	if hpa.Spec.ScaleTargetRef.Name != runner.Name || len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].External == nil ||
		hpa.Spec.Metrics[0].External.Metric.Name != "deltaci_queue_depth" || !metrics["deltaci_queue_depth"] {
		t.Errorf("the HorizontalPodAutoscaler must scale the runner on the external metric deltaci_queue_depth: %+v", hpa.Spec)
	}

	// Network policies: each selects pods that exist; the runner's first
	// policy lets it reach only the server's port and DNS.
	for _, v := range m["NetworkPolicy"] {
		np := v.(*networkingv1.NetworkPolicy)
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		matched := false
		for _, spec := range []*corev1.PodTemplateSpec{&server.Spec.Template, &runner.Spec.Template, &migrate.Spec.Template} {
			matched = matched || sel.Matches(labels.Set(spec.Labels))
		}
		if !matched {
			t.Errorf("NetworkPolicy %s selects no pod of these manifests", np.Name)
		}
	}
	rnp := one[networkingv1.NetworkPolicy](t, m, "NetworkPolicy", "deltaci-runner")
	if len(rnp.Spec.Ingress) != 0 || !slices.Contains(rnp.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("nothing may reach a runner: %+v", rnp.Spec.Ingress)
	}
	for _, e := range rnp.Spec.Egress {
		for _, to := range e.To {
			toServer := to.PodSelector != nil && to.NamespaceSelector == nil && labels.SelectorFromSet(to.PodSelector.MatchLabels).Matches(podLabels)
			toDNS := to.NamespaceSelector != nil && to.PodSelector != nil && to.PodSelector.MatchLabels["k8s-app"] == "kube-dns"
			if !toServer && !toDNS || to.IPBlock != nil {
				t.Errorf("the runner policy lets it reach %+v, beyond the server and DNS", to)
			}
			if toServer && (len(e.Ports) != 1 || e.Ports[0].Port.IntValue() != 8080) {
				t.Errorf("the runner reaches the server on %+v, want only 8080", e.Ports)
			}
		}
	}
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// secretMounts lists the files a container sees from the Secrets of its
// pod, each existing in secrets.yaml with that key.
func secretMounts(t *testing.T, m map[string][]any, spec corev1.PodSpec, c corev1.Container) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			sec := one[corev1.Secret](t, m, "Secret", v.Secret.SecretName)
			keys := map[string]string{}
			for k := range sec.StringData {
				keys[k] = k
			}
			if len(v.Secret.Items) > 0 {
				keys = map[string]string{}
				for _, it := range v.Secret.Items {
					if _, ok := sec.StringData[it.Key]; !ok {
						t.Errorf("volume %s takes key %s, which Secret %s lacks", v.Name, it.Key, sec.Name)
					}
					keys[it.Key] = it.Path
				}
			}
			for _, p := range keys {
				files[filepath.Join(vm.MountPath, p)] = true
			}
		}
	}
	return files
}

// checkFlags checks that every --flag of a deltaci command line is one
// that command has, from its own --help.
func checkFlags(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no deltaci command", where)
		return
	}
	var out, errOut bytes.Buffer
	if code := cli.Run(t.Context(), []string{args[0], "--help"}, nil, &out, &errOut); code != 0 {
		t.Errorf("%s: deltaci %s --help: exit %d: %s", where, args[0], code, errOut.String())
		return
	}
	for _, a := range args[1:] {
		flag, _, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(flag, "--") || !regexp.MustCompile(`(?m)^\s+(-\w, )?`+regexp.QuoteMeta(flag)+`\b`).MatchString(out.String()) {
			t.Errorf("%s: deltaci %s has no flag %s", where, args[0], a)
		}
	}
}
