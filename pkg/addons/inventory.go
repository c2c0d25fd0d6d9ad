package addons

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InventoryNamespace holds one ConfigMap per installed add-on,
// hacluster-addon-<name>, listing every object the install applied.
const InventoryNamespace = "kube-system"

// InventoryName is the ConfigMap name of an add-on's inventory.
func InventoryName(addon string) string { return "hacluster-addon-" + addon }

// Entry is one object of an inventory.
type Entry struct {
	Ref
	// Created is false for objects that existed before hacluster first
	// applied them; uninstall leaves those in place.
	Created bool `json:"created"`
}

// Inventory records what an install applied, in apply order.
type Inventory struct {
	Addon     string            `json:"addon"`
	Version   string            `json:"version"`
	Manifests []Manifest        `json:"manifests"`
	Options   map[string]string `json:"options,omitempty"`
	Objects   []Entry           `json:"objects"`
}

// ReadInventory returns the inventory of addon, or nil when there is none.
func (c *Cluster) ReadInventory(ctx context.Context, addon string) (*Inventory, error) {
	cm, err := c.Client.CoreV1().ConfigMaps(InventoryNamespace).Get(ctx, InventoryName(addon), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory %s/%s: %w", InventoryNamespace, InventoryName(addon), err)
	}
	var inv Inventory
	if err := json.Unmarshal([]byte(cm.Data["inventory.json"]), &inv); err != nil {
		return nil, fmt.Errorf("inventory %s/%s is damaged: %w", InventoryNamespace, InventoryName(addon), err)
	}
	return &inv, nil
}

func (c *Cluster) writeInventory(ctx context.Context, inv *Inventory) error {
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return err
	}
	u := obj("v1", "ConfigMap", InventoryNamespace, InventoryName(inv.Addon), map[string]any{
		"data": map[string]any{"addon": inv.Addon, "version": inv.Version, "inventory.json": string(b)},
	})
	u.SetLabels(map[string]string{LabelAddon: inv.Addon, "app.kubernetes.io/managed-by": FieldManager})
	m, err := c.mapping(RefOf(u))
	if err != nil {
		return err
	}
	_, _, err = c.applyOne(ctx, m, u, false, true)
	return err
}

func (c *Cluster) deleteInventory(ctx context.Context, addon string) error {
	err := c.Client.CoreV1().ConfigMaps(InventoryNamespace).Delete(ctx, InventoryName(addon), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
