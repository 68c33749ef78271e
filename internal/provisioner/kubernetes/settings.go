package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// Settings are provisioners.<name>.settings for type kubernetes.
type Settings struct {
	// Kubeconfig is the path of a kubeconfig file. Empty: the in-cluster
	// service account (the daemon runs in a pod).
	Kubeconfig string `json:"kubeconfig"`
	// Context picks a kubeconfig context; default its current-context.
	Context string `json:"context"`
	// Namespace the pods and Secrets live in. Default: the kubeconfig
	// context's namespace, or the service account's namespace in-cluster.
	Namespace string `json:"namespace"`
	// MaxInstances bounds the pods of this provisioner alive at once
	// (0: no bound beyond the pools' max_runners). Default 0.
	MaxInstances int `json:"max_instances"`
	// DeleteGracePeriod is the pod's termination grace period on delete, a
	// Go duration. Default 30s.
	DeleteGracePeriod string `json:"delete_grace_period"`
	// BootstrapTimeout: a pod still Pending this long after its creation is
	// reported failed (unschedulable, image not pulled), with the reason
	// Kubernetes gives. Default: lifecycle.bootstrap_timeout.
	BootstrapTimeout string `json:"bootstrap_timeout"`
	// APIQPS and APIBurst bound the requests to the API server (client-go's
	// defaults, 5 and 10, would queue a burst of creates). Default 50/100.
	APIQPS   float32 `json:"api_qps"`
	APIBurst int     `json:"api_burst"`
	// Pod is the template every runner pod is built from.
	Pod PodTemplate `json:"pod"`
}

// PodTemplate is the part of the pod the operator chooses. Lists and
// objects take Kubernetes' own field names (tolerations, affinity, volumes
// exactly as in a pod spec).
type PodTemplate struct {
	Image           string                      `json:"image"`
	ImagePullPolicy corev1.PullPolicy           `json:"image_pull_policy"`
	Command         []string                    `json:"command"`
	Args            []string                    `json:"args"`
	WorkingDir      string                      `json:"working_dir"`
	Resources       corev1.ResourceRequirements `json:"resources"`
	NodeSelector    map[string]string           `json:"node_selector"`
	Tolerations     []corev1.Toleration         `json:"tolerations"`
	Affinity        *corev1.Affinity            `json:"affinity"`
	ServiceAccount  string                      `json:"service_account"`
	// Env is added to the runner container (after the variables the
	// provisioner sets, which it may not replace).
	Env                      []corev1.EnvVar                   `json:"env"`
	Volumes                  []corev1.Volume                   `json:"volumes"`
	VolumeMounts             []corev1.VolumeMount              `json:"volume_mounts"`
	ImagePullSecrets         []string                          `json:"image_pull_secrets"`
	Labels                   map[string]string                 `json:"labels"`
	Annotations              map[string]string                 `json:"annotations"`
	PriorityClass            string                            `json:"priority_class"`
	RuntimeClass             string                            `json:"runtime_class"`
	SecurityContext          *corev1.PodSecurityContext        `json:"security_context"`
	ContainerSecurityContext *corev1.SecurityContext           `json:"container_security_context"`
	DNSPolicy                corev1.DNSPolicy                  `json:"dns_policy"`
	HostAliases              []corev1.HostAlias                `json:"host_aliases"`
	TopologySpread           []corev1.TopologySpreadConstraint `json:"topology_spread_constraints"`
}

// config is the validated form of Settings.
type config struct {
	kubeconfig, context, namespace string
	maxInstances                   int
	deleteGrace                    time.Duration
	bootstrapTimeout               time.Duration
	qps                            float32
	burst                          int
	pod                            PodTemplate
}

// Defaults.
const (
	DefaultDeleteGracePeriod = 30 * time.Second
	DefaultBootstrapTimeout  = 10 * time.Minute
	DefaultAPIQPS            = 50
	DefaultAPIBurst          = 100
)

// reservedEnv are set by the provisioner; the template may not set them.
var reservedEnv = map[string]bool{
	envJITConfig: true, envToken: true, envURL: true, envName: true,
	envLabels: true, envGroup: true, envEphemeral: true,
}

// parseSettings validates settings and lists every problem with its key path.
func parseSettings(raw map[string]any, env provisioner.Env) (config, error) {
	probs := provisioner.NewProblems(env.Name)
	var s Settings
	if !provisioner.DecodeSettings(raw, &s, probs) {
		return config{}, probs.Err()
	}
	c := config{context: s.Context, namespace: s.Namespace, maxInstances: s.MaxInstances, pod: s.Pod,
		deleteGrace: DefaultDeleteGracePeriod, bootstrapTimeout: env.BootstrapTimeout, qps: DefaultAPIQPS, burst: DefaultAPIBurst}
	if c.bootstrapTimeout <= 0 {
		c.bootstrapTimeout = DefaultBootstrapTimeout
	}
	if s.Kubeconfig != "" {
		c.kubeconfig = s.Kubeconfig
		if !filepath.IsAbs(c.kubeconfig) && env.ConfigDir != "" {
			c.kubeconfig = filepath.Join(env.ConfigDir, c.kubeconfig)
		}
		if _, err := os.Stat(c.kubeconfig); err != nil {
			probs.Add("kubeconfig", "cannot be read: %v", err)
		}
	}
	if s.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(s.Namespace) {
			probs.Add("namespace", "%q is not a namespace name: %s", s.Namespace, msg)
		}
	}
	if s.MaxInstances < 0 {
		probs.Add("max_instances", "must be 0 (no bound) or more, got %d", s.MaxInstances)
	}
	parseDur := func(key, v string, out *time.Duration, min time.Duration) {
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			probs.Add(key, "must be a duration like 30s, got %q", v)
		case d < min:
			probs.Add(key, "must be at least %s, got %s", min, d)
		default:
			*out = d
		}
	}
	parseDur("delete_grace_period", s.DeleteGracePeriod, &c.deleteGrace, 0)
	parseDur("bootstrap_timeout", s.BootstrapTimeout, &c.bootstrapTimeout, time.Second)
	if s.APIQPS < 0 {
		probs.Add("api_qps", "must be positive, got %v", s.APIQPS)
	} else if s.APIQPS > 0 {
		c.qps = s.APIQPS
	}
	if s.APIBurst < 0 {
		probs.Add("api_burst", "must be positive, got %d", s.APIBurst)
	} else if s.APIBurst > 0 {
		c.burst = s.APIBurst
	}
	p := s.Pod
	if p.Image == "" {
		probs.Add("pod.image", "is required (for GitHub's runner image: ghcr.io/actions/actions-runner:<version>)")
	}
	switch p.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		probs.Add("pod.image_pull_policy", "must be Always, IfNotPresent or Never, got %q", p.ImagePullPolicy)
	}
	for i, e := range p.Env {
		if reservedEnv[e.Name] {
			probs.Add(fmt.Sprintf("pod.env[%d].name", i), "%s is set by the provisioner", e.Name)
		}
		if e.Name == "" {
			probs.Add(fmt.Sprintf("pod.env[%d].name", i), "is required")
		}
	}
	for k, v := range p.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			probs.Add("pod.labels."+k, "not a label key: %s", msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			probs.Add("pod.labels."+k, "not a label value: %s", msg)
		}
		if isOwnershipLabel(k) {
			probs.Add("pod.labels."+k, "is set by the provisioner")
		}
	}
	for k := range p.NodeSelector {
		for _, msg := range validation.IsQualifiedName(k) {
			probs.Add("pod.node_selector."+k, "not a label key: %s", msg)
		}
	}
	if p.ServiceAccount != "" {
		for _, msg := range validation.IsDNS1123Subdomain(p.ServiceAccount) {
			probs.Add("pod.service_account", "%q is not a service account name: %s", p.ServiceAccount, msg)
		}
	}
	mounts := map[string]bool{}
	for _, v := range p.Volumes {
		mounts[v.Name] = true
	}
	for i, m := range p.VolumeMounts {
		if !mounts[m.Name] {
			probs.Add(fmt.Sprintf("pod.volume_mounts[%d].name", i), "no volume named %q in pod.volumes", m.Name)
		}
	}
	return c, probs.Err()
}
