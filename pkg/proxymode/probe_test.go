package proxymode

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeKubelet answers probe Pods as a kubelet that cannot pull the image
// would: Pending, the container waiting with reason (per node).
func fakeKubelet(reasons map[string]string) *fake.Clientset {
	c := fake.NewClientset()
	var n atomic.Int64
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if p.Name == "" {
			p.Name = p.GenerateName + fmt.Sprint(n.Add(1))
		}
		p.Status.Phase = corev1.PodPending
		if r := reasons[p.Spec.NodeName]; r != "" {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "probe", Image: p.Spec.Containers[0].Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: r,
					Message: `failed to pull and unpack image "` + p.Spec.Containers[0].Image + `": not found`}}}}
		}
		return false, nil, nil // the tracker stores it
	})
	return c
}

// An image the nodes cannot pull fails fast with the reason, not after the timeout.
func TestProbeImagePullFailsFast(t *testing.T) {
	c := fakeKubelet(map[string]string{"cp-1": "ErrImagePull", "worker-1": "ImagePullBackOff"})
	start := time.Now()
	res, err := Probe(context.Background(), c, []string{"cp-1", "worker-1"}, ProbeOptions{Image: "probe.example/nope:1", Timeout: time.Minute, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s: waited for the timeout", d)
	}
	for _, r := range res {
		if r.Mode != "" || !strings.Contains(r.Error, "image probe.example/nope:1 cannot be pulled: ") || !strings.Contains(r.Error, "not found") {
			t.Errorf("result %+v", r)
		}
	}
	if !strings.Contains(res[0].Error, "ErrImagePull") || !strings.Contains(res[1].Error, "ImagePullBackOff") {
		t.Errorf("reasons: %+v", res)
	}
	n, why := Unanswered(res)
	if n != 2 || len(why) != 2 || !strings.HasSuffix(why[0], "(cp-1)") {
		t.Errorf("Unanswered = %d %q", n, why)
	}
}

// No answer at all (a Pod that never starts) ends at the timeout as an
// error for that node; Unanswered groups equal reasons.
func TestProbeNoAnswerIsNotSuccess(t *testing.T) {
	c := fakeKubelet(nil)
	res, err := Probe(context.Background(), c, []string{"a", "b"}, ProbeOptions{Image: "busybox", Timeout: 50 * time.Millisecond, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n, why := Unanswered(res)
	if n != 2 || len(why) != 1 || !strings.Contains(why[0], "no answer within 50ms") || !strings.HasSuffix(why[0], "(a, b)") {
		t.Errorf("Unanswered = %d %q; results %+v", n, why, res)
	}
	if n, _ := Unanswered([]ProbeResult{{Node: "a", Mode: IPVS}}); n != 0 {
		t.Errorf("an answered probe counted as unanswered")
	}
}
