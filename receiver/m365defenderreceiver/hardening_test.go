package m365defenderreceiver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// An alert whose lastUpdateDateTime is empty is versioned by its
// createdDateTime; with neither, its uid is its id alone (never "id:").
func TestEmptyLastUpdateGetsStableUID(t *testing.T) {
	page := []byte(`{"value":[
		{"id":"e1","lastUpdateDateTime":"","createdDateTime":"2026-11-20T10:00:00.1234567Z"},
		{"id":"e2","lastUpdateDateTime":"","createdDateTime":""},
		{"id":"e3","createdDateTime":"2026-11-20T10:00:00Z"}]}`)
	lrs := plog.NewLogRecordSlice()
	_, err := decodePage(page, lrs)
	require.NoError(t, err)
	var uids []string
	for i := 0; i < lrs.Len(); i++ {
		convertAlert(lrs.At(i), 0, "", nil)
		v, ok := lrs.At(i).Attributes().Get(contract.AttrLogRecordUID)
		require.True(t, ok)
		uids = append(uids, v.Str())
	}
	assert.Equal(t, []string{"e1:2026-11-20T10:00:00.1234567Z", "e2", "e3:2026-11-20T10:00:00Z"}, uids)
}

// brokenStorage is a storage extension whose client cannot read.
type brokenStorage struct {
	component.StartFunc
	component.ShutdownFunc
}

func (brokenStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return brokenClient{}, nil
}

type brokenClient struct{}

var errDiskGone = errors.New("input/output error")

func (brokenClient) Get(context.Context, string) ([]byte, error)        { return nil, errDiskGone }
func (brokenClient) Set(context.Context, string, []byte) error          { return errDiskGone }
func (brokenClient) Delete(context.Context, string) error               { return errDiskGone }
func (brokenClient) Batch(context.Context, ...*storage.Operation) error { return errDiskGone }
func (brokenClient) Close(context.Context) error                        { return nil }

// A checkpoint that cannot be read fails Start with the reset procedure; it
// never silently starts over from initial_lookback.
func TestUnreadableCheckpointFailsStart(t *testing.T) {
	fg := newFakeGraph(t)
	id := storagetest.NewStorageID("state")
	cfg := testConfig(fg)
	cfg.Storage = &id
	key := checkpointKey(cfg.TenantID, cfg.Source, cfg.Filter)
	set := receivertest.NewNopSettings(typ)
	set.ID = component.NewIDWithName(typ, "contoso")

	seed := func(t *testing.T, kv map[string][]byte) component.Host {
		dir := t.TempDir()
		c := storagetest.NewFileBackedClient(component.KindReceiver, set.ID, "", dir)
		for k, v := range kv {
			require.NoError(t, c.Set(context.Background(), k, v))
		}
		require.NoError(t, c.Close(context.Background()))
		return storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir)
	}
	tests := map[string]struct {
		host component.Host
		want string
	}{
		"storage error":   {storagetest.NewStorageHost().WithExtension(id, brokenStorage{}), "input/output error"},
		"unknown version": {seed(t, map[string][]byte{key: []byte(`{"version":99,"cursor":"2026-11-20T10:00:00Z"}`)}), "unsupported checkpoint version 99"},
		"not JSON":        {seed(t, map[string][]byte{key: []byte(`{"vers`)}), "decoding checkpoint"},
		"corrupt chunk":   {seed(t, map[string][]byte{key: []byte(`{"version":1}`), key + ".seen.0": []byte("short")}), "corrupt emitted-versions chunk"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := newDefenderReceiver(cfg, set, consumertest.NewNop())
			require.NoError(t, err)
			err = r.Start(context.Background(), tt.host)
			require.Error(t, err)
			assert.ErrorContains(t, err, tt.want)
			assert.ErrorContains(t, err, "does not start over on its own")
			assert.ErrorContains(t, err, "receiver_m365_defender_contoso")
			assert.Zero(t, fg.alertsCalls, "no poll after a failed Start")
			require.NoError(t, r.Shutdown(context.Background()))
		})
	}
}

// Shutdown while the pipeline holds a page: Shutdown with an expired context
// returns at once, the page accepted afterwards is still saved, and only
// then is the storage client closed. Run with -race -count=20.
func TestShutdownMidPageSavesBeforeClosingStorage(t *testing.T) {
	fg := newFakeGraph(t)
	now := time.Now().UTC()
	for i := range 4 {
		fg.add(mkAlert(fmt.Sprintf("sd%d", i), now.Add(-time.Duration(i+1)*time.Minute)))
	}
	dir := t.TempDir()
	id := storagetest.NewStorageID("state")
	cfg := testConfig(fg)
	cfg.Storage = &id
	cfg.PageSize = 2
	inPage := make(chan struct{})
	release := make(chan struct{})
	var first []string
	calls := 0
	next, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		calls++
		if calls == 1 {
			first = emittedUIDs([]plog.Logs{ld})
			close(inPage)
			<-release
			return nil // the queue accepted the page just as the collector stopped
		}
		return errors.New("stopping")
	})
	require.NoError(t, err)
	set := receivertest.NewNopSettings(typ)
	r, err := newDefenderReceiver(cfg, set, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir)))
	<-inPage

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, r.Shutdown(expired), context.Canceled)
	close(release)
	require.NoError(t, r.Shutdown(context.Background()), "the second Shutdown waits for the loop and the storage close")

	// The accepted page is in the stored checkpoint: after a restart it is
	// not emitted again.
	c := storagetest.NewFileBackedClient(component.KindReceiver, set.ID, "", dir)
	t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
	store := checkpointStore{client: c, key: checkpointKey(cfg.TenantID, cfg.Source, cfg.Filter)}
	st, err := store.load(context.Background())
	require.NoError(t, err)
	require.NotNil(t, st)
	require.Len(t, first, 2)
	assert.Len(t, st.seen, 2, "the two versions of the accepted page were saved")
}
