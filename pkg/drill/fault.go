package drill

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// fault is how one fault is made and undone on a host.
type fault struct {
	name string
	// controlPlaneOnly: the target must be a control plane.
	controlPlaneOnly bool
	// stopsEtcd: the target's etcd member goes away with the fault.
	stopsEtcd bool
	// hostDown: the host itself goes away (SSH too).
	hostDown bool
	inject   func(ctx context.Context, d *drill, host string) error
	undo     func(ctx context.Context, d *drill, host string) error
}

// sudo runs script as root on host, within a minute.
func sudo(ctx context.Context, d *drill, host, script string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := d.conn(host).Output(ctx, script, true)
	return err
}

func unitFault(name, unit string) fault {
	return fault{name: name, controlPlaneOnly: unit != "kubelet",
		inject: func(ctx context.Context, d *drill, host string) error {
			return sudo(ctx, d, host, "systemctl stop "+unit)
		},
		undo: func(ctx context.Context, d *drill, host string) error {
			return sudo(ctx, d, host, "systemctl start "+unit)
		}}
}

func newFault(o Options) (fault, error) {
	if c := o.Custom; c != nil {
		return fault{name: c.Name, controlPlaneOnly: true, stopsEtcd: c.HostDown, hostDown: c.HostDown,
			inject: func(ctx context.Context, _ *drill, host string) error { return c.Inject(ctx, host) },
			undo:   func(ctx context.Context, _ *drill, host string) error { return c.Undo(ctx, host) }}, nil
	}
	switch o.Fault {
	case StopAPIServer:
		return fault{name: StopAPIServer, controlPlaneOnly: true,
			// The kubelet stops the static pod when its manifest leaves the
			// directory, and starts it again when it is back.
			inject: func(ctx context.Context, d *drill, host string) error {
				return sudo(ctx, d, host, "mv "+manifest+" "+stashManifest)
			},
			undo: func(ctx context.Context, d *drill, host string) error {
				return sudo(ctx, d, host, "mv "+stashManifest+" "+manifest)
			}}, nil
	case StopHAProxy:
		return unitFault(StopHAProxy, "haproxy"), nil
	case StopKeepalived:
		return unitFault(StopKeepalived, "keepalived"), nil
	case StopKubelet:
		return unitFault(StopKubelet, "kubelet"), nil
	case Reboot:
		return fault{name: Reboot, stopsEtcd: true, hostDown: true,
			inject: func(ctx context.Context, d *drill, host string) error {
				// --no-block: the command returns before the SSH session dies.
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_, err := d.conn(host).Output(ctx, "systemctl --no-block reboot", true)
				if err != nil && strings.Contains(err.Error(), "exit") {
					return err
				}
				return nil // the connection may die with the host
			},
			// The host comes back by itself; run waits for SSH.
			undo: func(context.Context, *drill, string) error { return nil }}, nil
	}
	return fault{}, fmt.Errorf("--fault %q: not a fault (faults: %s)", o.Fault, strings.Join(Faults, ", "))
}
