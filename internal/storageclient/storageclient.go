// Package storageclient gets a client from a storage extension, the one way
// both components do.
package storageclient // import "github.com/defender-ci/otelcol-defender-ci/internal/storageclient"

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// Get returns a client of the storage extension id for the component self of
// kind, under name.
func Get(ctx context.Context, host component.Host, id component.ID, kind component.Kind, self component.ID, name string) (storage.Client, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("storage extension %q not found", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("extension %q is not a storage extension", id)
	}
	client, err := se.GetClient(ctx, kind, self, name)
	if err != nil {
		return nil, fmt.Errorf("storage extension %q: %w", id, err)
	}
	return client, nil
}
