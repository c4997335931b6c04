//go:build js && wasm

package main

import (
	"github.com/hack-pad/safejs"

	"aerodisk/internal/manager"
)

// layerOps are the operations on layered disks (docs/overlays.md): overlays,
// checkpoints, merges, deltas. Each is one call into internal/manager.
var layerOps = map[string]func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error){
	"createOverlay": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return m.CreateOverlay(str("baseId"), str("name"))
	},
	"checkpoint": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return m.TakeCheckpoint(str("id"), str("name"))
	},
	"listCheckpoints": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return m.ListCheckpoints(str("id"))
	},
	"restoreCheckpoint": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return m.RestoreCheckpoint(str("id"), str("checkpointId"))
	},
	"deleteCheckpoint": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return nil, m.DeleteCheckpoint(r.ctx, str("id"), str("checkpointId"), progressPoster(r.id))
	},
	"revertDisk": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return m.RevertDisk(str("id"))
	},
	"commitOverlay": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return nil, m.CommitOverlay(r.ctx, str("id"), progressPoster(r.id))
	},
	"compactDisk": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		res, err := m.CompactDisk(r.ctx, str("id"), progressPoster(r.id))
		return map[string]any{"reclaimedBytes": res.ReclaimedBytes, "files": res.Files}, err
	},
	"flattenDisk": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		return m.FlattenDisk(r.ctx, str("id"), str("name"), progressPoster(r.id))
	},
	"importDelta": func(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
		file, err := a.Get("file")
		if err != nil {
			return nil, err
		}
		in, err := newFileInput(file)
		if err != nil {
			return nil, err
		}
		return m.ImportDelta(r.ctx, in, str("baseId"), str("name"))
	},
}
