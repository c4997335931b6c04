package catalog

// Layers is a disk's layer tree (docs/overlays.md): the head's chain is
// the disk as it reads now; checkpoints keep other branches alive.
type Layers struct {
	BlockSize int64   `json:"blockSize"`
	Head      string  `json:"head"`
	Nodes     []Layer `json:"nodes"`
}

// Layer is one layer file of a disk.
type Layer struct {
	ID          string `json:"id"`
	FileName    string `json:"fileName"`
	Parent      string `json:"parent"` // "" the disk's own base
	CreatedAtMs int64  `json:"createdAtMs"`
}

// Checkpoint names a frozen layer.
type Checkpoint struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	CreatedAtMs int64  `json:"createdAtMs"`
	Layer       string `json:"layer"`
}

// PendingOp is a merge that must finish (or be redone) before the disk is
// used: "merge-up" copies From into Into; "commit" copies the overlay's
// layers down into its base.
type PendingOp struct {
	Op          string `json:"op"`
	From        string `json:"from,omitempty"`
	Into        string `json:"into,omitempty"`
	StartedAtMs int64  `json:"startedAtMs"`
}

// Node returns the layer with the given id.
func (l *Layers) Node(id string) *Layer {
	if l == nil {
		return nil
	}
	for i := range l.Nodes {
		if l.Nodes[i].ID == id {
			return &l.Nodes[i]
		}
	}
	return nil
}

// Chain returns the layers from id down to the base, top first; ok is false
// when a parent is missing or the links loop.
func (l *Layers) Chain(id string) (chain []*Layer, ok bool) {
	for id != "" {
		n := l.Node(id)
		if n == nil || len(chain) > len(l.Nodes) {
			return chain, false
		}
		chain = append(chain, n)
		id = n.Parent
	}
	return chain, true
}

// Children returns the ids of the layers whose parent is id.
func (l *Layers) Children(id string) []string {
	var out []string
	for _, n := range l.Nodes {
		if n.Parent == id {
			out = append(out, n.ID)
		}
	}
	return out
}
