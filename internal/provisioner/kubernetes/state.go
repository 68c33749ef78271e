package kubernetes

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// waitingFailures are container waiting reasons that mean the runner will
// not start without someone changing something: reported at once as the
// pod's LastError, and as the reason when bootstrap_timeout fails the pod.
var waitingFailures = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"ErrImageNeverPull": true, "CrashLoopBackOff": true,
}

// instanceOf maps a pod to an instance. now is for bootstrap_timeout: a pod
// Pending past it is a failed start.
func instanceOf(pod *corev1.Pod, bootstrapTimeout time.Duration, now time.Time) provisioner.Instance {
	in := provisioner.Instance{
		ID:         pod.Name,
		Pool:       pod.Labels[labelPool],
		RunnerName: pod.Annotations[annotationRunner],
		CreatedAt:  pod.CreationTimestamp.Time,
	}
	if in.RunnerName == "" {
		in.RunnerName = pod.Labels[labelRunner]
	}
	if pod.Status.PodIP != "" {
		in.Addresses = []string{pod.Status.PodIP}
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
		in.State = provisioner.StateRunning
	case corev1.PodSucceeded:
		in.State = provisioner.StateStopped
	case corev1.PodFailed:
		in.State = provisioner.StateFailed
		in.LastError = failureReason(pod)
	case corev1.PodUnknown:
		// The node stopped reporting: the runner may be alive, but
		// nobody can tell or reach it.
		in.State = provisioner.StateFailed
		in.LastError = "pod phase Unknown (its node stopped reporting)"
	default: // Pending, or no phase yet
		in.State = provisioner.StatePending
		in.LastError = pendingReason(pod)
		if age := now.Sub(in.CreatedAt); !in.CreatedAt.IsZero() && age > bootstrapTimeout {
			why := in.LastError
			if why == "" {
				why = "no reason reported by Kubernetes"
			}
			in.State = provisioner.StateFailed
			in.LastError = fmt.Sprintf("pod still Pending after %s (bootstrap_timeout %s): %s",
				age.Round(time.Second), bootstrapTimeout, why)
		}
	}
	// Being deleted (by us or from outside): whatever runs in it is about
	// to stop.
	if pod.DeletionTimestamp != nil && (in.State == provisioner.StateRunning || in.State == provisioner.StatePending) {
		in.State = provisioner.StateStopped
		in.LastError = "pod is being deleted"
	}
	return in
}

// pendingReason is why a Pending pod is not running yet, when Kubernetes
// says: unschedulable, an image that cannot be pulled, a missing Secret.
func pendingReason(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return joinReason(c.Reason, c.Message)
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && waitingFailures[w.Reason] {
			return joinReason(w.Reason, w.Message)
		}
	}
	return ""
}

// failureReason says why a pod Failed: evicted, OOM-killed, an exit code.
func failureReason(pod *corev1.Pod) string {
	var parts []string
	if pod.Status.Reason != "" {
		parts = append(parts, joinReason(pod.Status.Reason, pod.Status.Message))
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			r := t.Reason
			if r == "" {
				r = "Terminated"
			}
			parts = append(parts, fmt.Sprintf("container %s: %s (exit code %d)", cs.Name, joinReason(r, t.Message), t.ExitCode))
		}
	}
	if len(parts) == 0 {
		return "pod Failed with no reason reported"
	}
	return strings.Join(parts, "; ")
}

func joinReason(reason, message string) string {
	message = strings.TrimSpace(message)
	if message == "" {
		return reason
	}
	const max = 300
	if len(message) > max {
		message = message[:max] + "…"
	}
	return reason + ": " + message
}
