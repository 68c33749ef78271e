package kubetest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// ManifestFromMarkdown returns the first ```yaml block after the line that
// contains marker in the Markdown file at path: the tests apply the RBAC
// manifest the documentation shows, so the two cannot drift apart.
func ManifestFromMarkdown(t testing.TB, path, marker string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	var out bytes.Buffer
	state := 0 // 0: looking for the marker, 1: for the fence, 2: in the block
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.Contains(line, marker):
			state = 1
		case state == 1 && strings.TrimSpace(line) == "```yaml":
			state = 2
		case state == 2 && strings.TrimSpace(line) == "```":
			return out.Bytes()
		case state == 2:
			out.WriteString(line + "\n")
		}
	}
	t.Fatalf("kubetest: no ```yaml block after %q in %s", marker, path)
	return nil
}

// Apply creates, as admin, every object of a multi-document YAML manifest.
// It knows the kinds the documentation's manifests use: Namespace,
// ServiceAccount, Role, RoleBinding, ClusterRole, ClusterRoleBinding. A
// namespace it creates also gets the "default" ServiceAccount, which no
// controller makes here.
func (s *Server) Apply(t testing.TB, manifest []byte) {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	c := s.Admin()
	for i, doc := range bytes.Split(manifest, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("kubetest: manifest document %d: %v", i, err)
		}
		create := metav1.CreateOptions{}
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = c.CoreV1().Namespaces().Create(ctx, o, create)
			if err == nil {
				_, err = c.CoreV1().ServiceAccounts(o.Name).Create(ctx,
					&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, create)
			}
		case *corev1.ServiceAccount:
			_, err = c.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, create)
		case *rbacv1.Role:
			_, err = c.RbacV1().Roles(o.Namespace).Create(ctx, o, create)
		case *rbacv1.RoleBinding:
			_, err = c.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, create)
		case *rbacv1.ClusterRole:
			_, err = c.RbacV1().ClusterRoles().Create(ctx, o, create)
		case *rbacv1.ClusterRoleBinding:
			_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, o, create)
		default:
			err = fmt.Errorf("kind %s not supported by kubetest.Apply", gvk.Kind)
		}
		if err != nil {
			t.Fatalf("kubetest: manifest document %d (%s): %v", i, gvk.Kind, err)
		}
	}
}
