package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// Ownership labels, on every pod and Secret the provisioner creates. The
// informer and every list select on managed-by, daemon and provisioner, so
// nothing another daemon (or a person) made in the namespace is ever seen,
// let alone deleted.
const (
	labelManagedBy   = "app.kubernetes.io/managed-by"
	managedByValue   = "runnerscaler"
	labelDaemon      = "runnerscaler.io/daemon"
	labelProvisioner = "runnerscaler.io/provisioner"
	labelPool        = "runnerscaler.io/pool"
	labelRunner      = "runnerscaler.io/runner"
	// The exact runner name, should it ever not fit a label value.
	annotationRunner = "runnerscaler.io/runner-name"
)

func isOwnershipLabel(k string) bool {
	switch k {
	case labelManagedBy, labelDaemon, labelProvisioner, labelPool, labelRunner:
		return true
	}
	return false
}

// Environment of the runner container.
const (
	// envJITConfig is what GitHub's run.sh reads a JIT config from.
	envJITConfig = "ACTIONS_RUNNER_INPUT_JITCONFIG"
	// Token registration: the image's entrypoint runs config.sh with these.
	envToken     = "RUNNERSCALER_REGISTRATION_TOKEN"
	envURL       = "RUNNERSCALER_URL"
	envName      = "RUNNERSCALER_RUNNER_NAME"
	envLabels    = "RUNNERSCALER_LABELS"
	envGroup     = "RUNNERSCALER_RUNNER_GROUP"
	envEphemeral = "RUNNERSCALER_EPHEMERAL"
)

// Keys of the per-runner Secret.
const (
	secretKeyJIT   = "jitconfig"
	secretKeyToken = "token"
)

// containerName is the runner's container in every pod.
const containerName = "runner"

// labelValue makes s usable as a label value: itself when valid, else a
// short hash (the exact value is then only in an annotation).
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "h-" + hex.EncodeToString(sum[:12])
}

// podName is the pod's name (and the instance id): the runner name, which
// config allows only lower-case letters, digits and dashes in.
func podName(runner string) string {
	n := strings.ToLower(runner)
	if len(validation.IsDNS1123Subdomain(n)) == 0 && len(n) <= 63 {
		return n
	}
	return "runner-" + labelValue(n)[2:]
}

func secretName(pod string) string { return pod + "-jit" }

// ownership is the label set that marks an object as this provisioner's.
func (p *Provisioner) ownership() map[string]string {
	return map[string]string{
		labelManagedBy:   managedByValue,
		labelDaemon:      labelValue(p.daemonID),
		labelProvisioner: labelValue(p.name),
	}
}

// selector selects everything this provisioner made.
func (p *Provisioner) selector() labels.Selector {
	return labels.SelectorFromSet(p.ownership())
}

func (p *Provisioner) objectLabels(spec provisioner.Spec) map[string]string {
	l := maps.Clone(p.cfg.pod.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, p.ownership())
	l[labelPool] = labelValue(spec.Pool)
	l[labelRunner] = labelValue(spec.RunnerName)
	return l
}

// buildSecret holds the runner's credential; the pod reads it through
// secretKeyRef, so it never appears in the pod spec.
func (p *Provisioner) buildSecret(name string, spec provisioner.Spec) *corev1.Secret {
	data := map[string][]byte{}
	if spec.Registration.JITConfig != "" {
		data[secretKeyJIT] = []byte(spec.Registration.JITConfig.Reveal())
	} else {
		data[secretKeyToken] = []byte(spec.Registration.Token.Reveal())
	}
	immutable := true
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        secretName(name),
			Namespace:   p.cfg.namespace,
			Labels:      p.objectLabels(spec),
			Annotations: map[string]string{annotationRunner: spec.RunnerName},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: &immutable,
		Data:      data,
	}
}

func fromSecret(secret, key string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
	}}
}

// buildPod is the runner's pod: the template, our labels, restartPolicy
// Never (a runner that exits is done; restarting it would re-use a spent JIT
// config) and the credential from the Secret.
func (p *Provisioner) buildPod(name string, spec provisioner.Spec) *corev1.Pod {
	t := p.cfg.pod
	env := []corev1.EnvVar{{Name: envName, Value: spec.RunnerName}}
	if spec.Registration.JITConfig != "" {
		env = append(env, corev1.EnvVar{Name: envJITConfig, ValueFrom: fromSecret(secretName(name), secretKeyJIT)})
	} else {
		env = append(env,
			corev1.EnvVar{Name: envToken, ValueFrom: fromSecret(secretName(name), secretKeyToken)},
			corev1.EnvVar{Name: envURL, Value: spec.ScopeURL},
			corev1.EnvVar{Name: envLabels, Value: strings.Join(spec.Labels, ",")},
			corev1.EnvVar{Name: envGroup, Value: spec.RunnerGroup},
			corev1.EnvVar{Name: envEphemeral, Value: strconv.FormatBool(spec.Registration.Ephemeral)},
		)
	}
	env = append(env, t.Env...)
	annotations := maps.Clone(t.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[annotationRunner] = spec.RunnerName
	var pullSecrets []corev1.LocalObjectReference
	for _, s := range t.ImagePullSecrets {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: s})
	}
	grace := int64(p.cfg.deleteGrace.Seconds())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   p.cfg.namespace,
			Labels:      p.objectLabels(spec),
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			ServiceAccountName:            t.ServiceAccount,
			NodeSelector:                  t.NodeSelector,
			Tolerations:                   t.Tolerations,
			Affinity:                      t.Affinity,
			Volumes:                       t.Volumes,
			ImagePullSecrets:              pullSecrets,
			PriorityClassName:             t.PriorityClass,
			SecurityContext:               t.SecurityContext,
			DNSPolicy:                     t.DNSPolicy,
			HostAliases:                   t.HostAliases,
			TopologySpreadConstraints:     t.TopologySpread,
			Containers: []corev1.Container{{
				Name:            containerName,
				Image:           t.Image,
				ImagePullPolicy: t.ImagePullPolicy,
				Command:         t.Command,
				Args:            t.Args,
				WorkingDir:      t.WorkingDir,
				Env:             env,
				Resources:       t.Resources,
				VolumeMounts:    t.VolumeMounts,
				SecurityContext: t.ContainerSecurityContext,
			}},
		},
	}
	if t.RuntimeClass != "" {
		rc := t.RuntimeClass
		pod.Spec.RuntimeClassName = &rc
	}
	// The service account token is not mounted unless asked for: a job's
	// code runs in this pod, and the account needs no API access.
	if t.ServiceAccount == "" {
		no := false
		pod.Spec.AutomountServiceAccountToken = &no
	}
	return pod
}
