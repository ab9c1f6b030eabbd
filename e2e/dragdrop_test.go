package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// dropFile is one file a test drags onto the demo page.
type dropFile struct {
	name  string
	data  []byte
	width int // the PNG's, which the preview must have
}

// dragger brings files over the demo page and drops them on its drop zone.
type dragger interface {
	// over moves the dragged files over the drop zone, or off it onto the
	// page's heading.
	over(t *testing.T, s *stack, onZone bool)
	drop(t *testing.T, s *stack)
}

// pageDrag dispatches the page's own DragEvents, carrying a DataTransfer
// of Files made in the page from the test's bytes. The events follow the
// order a browser fires them in, so the demo's handlers see what they
// would see from any browser.
type pageDrag struct {
	at string // the element the drag is over; "" before it entered the page
}

func newPageDrag(t *testing.T, s *stack, files []dropFile) dragger {
	type jsFile struct {
		Name string `json:"name"`
		Data []byte `json:"data"` // base64 in JSON
	}
	var js []jsFile
	for _, f := range files {
		js = append(js, jsFile{f.name, f.data})
	}
	args, err := json.Marshal(js)
	if err != nil {
		t.Fatal(err)
	}
	if !eval[bool](t, s, fmt.Sprintf(`((files) => {
		const dt = new DataTransfer();
		for (const f of files) {
			const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
			dt.items.add(new File([bytes], f.name, { type: "image/png" }));
		}
		window.testDrag = dt;
		return dt.files.length === files.length;
	})(%s)`, args)) {
		t.Fatal("the page's DataTransfer does not hold the files")
	}
	return &pageDrag{}
}

// fire dispatches one DragEvent on the element that selector finds and
// reports whether the page cancelled it.
func (d *pageDrag) fire(t *testing.T, s *stack, typ, selector string) bool {
	t.Helper()
	return eval[bool](t, s, fmt.Sprintf(`(() => {
		const ev = new DragEvent(%q, { bubbles: true, cancelable: true, composed: true, dataTransfer: window.testDrag });
		return !document.querySelector(%q).dispatchEvent(ev);
	})()`, typ, selector))
}

func (d *pageDrag) over(t *testing.T, s *stack, onZone bool) {
	t.Helper()
	to := "h1"
	if onZone {
		to = "#drop-zone"
	}
	if to != d.at {
		d.fire(t, s, "dragenter", to)
		if d.at != "" {
			d.fire(t, s, "dragleave", d.at)
		}
		d.at = to
	}
	// Only a cancelled dragover makes the element a drop target.
	if !d.fire(t, s, "dragover", to) && onZone {
		t.Errorf("the page did not cancel dragover on the drop zone: a browser would not let the files drop there")
	}
}

func (d *pageDrag) drop(t *testing.T, s *stack) {
	t.Helper()
	if !d.fire(t, s, "drop", d.at) {
		t.Errorf("the page did not cancel the drop: a browser would open the files instead")
	}
}

// browserDrag drags files from disk into Chromium's own input pipeline
// (Input.dispatchDragEvent), as a file manager would: Chromium decides
// which element gets which events, whether the page accepts the drop, and
// makes the Files.
type browserDrag struct {
	data    *input.DragData
	entered bool
	x, y    float64
}

func newBrowserDrag(t *testing.T, s *stack, files []dropFile) dragger {
	d := &browserDrag{data: &input.DragData{Items: []*input.DragDataItem{}, DragOperationsMask: 1}} // 1: copy
	for _, f := range files {
		d.data.Files = append(d.data.Files, writeFile(t, f.name, f.data))
	}
	return d
}

// point finds the middle of the drop zone, or a point on the heading, and
// checks that the element there is (or is not) in the zone.
func (d *browserDrag) point(t *testing.T, s *stack, onZone bool) (float64, float64) {
	t.Helper()
	p := eval[[3]float64](t, s, fmt.Sprintf(`((onZone) => {
		const zone = document.getElementById("drop-zone");
		const r = (onZone ? zone : document.querySelector("h1")).getBoundingClientRect();
		const x = onZone ? r.left + r.width / 2 : r.left + 4, y = r.top + r.height / 2;
		return [x, y, zone.contains(document.elementFromPoint(x, y)) === onZone ? 1 : 0];
	})(%t)`, onZone))
	if p[2] != 1 {
		t.Fatalf("no point for the drag (on the zone: %t) at (%v, %v)", onZone, p[0], p[1])
	}
	return p[0], p[1]
}

func (d *browserDrag) send(t *testing.T, s *stack, typ input.DispatchDragEventType) {
	t.Helper()
	s.run(t, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: d.x, Y: d.y, Data: d.data})
		return chromedp.Void{}, err
	})
}

func (d *browserDrag) over(t *testing.T, s *stack, onZone bool) {
	t.Helper()
	d.x, d.y = d.point(t, s, onZone)
	if !d.entered {
		d.send(t, s, input.DispatchDragEventTypeDragEnter)
		d.entered = true
	}
	// When the element under the pointer changes, Chromium fires only
	// dragenter and dragleave; dragover comes with the next move, as it
	// does while a user's pointer rests on the zone.
	d.send(t, s, input.DispatchDragEventTypeDragOver)
	d.send(t, s, input.DispatchDragEventTypeDragOver)
}

func (d *browserDrag) drop(t *testing.T, s *stack) {
	t.Helper()
	d.send(t, s, input.DispatchDragEventTypeDrop)
}

// zoneLook is what the drop zone shows.
type zoneLook struct {
	State      string `json:"state"`
	Border     string `json:"border"`
	Background string `json:"background"`
}

func (s *stack) zone(t *testing.T) zoneLook {
	t.Helper()
	return eval[zoneLook](t, s, `(() => {
		const z = document.getElementById("drop-zone");
		const cs = getComputedStyle(z);
		return { state: z.dataset.state || "", border: cs.borderTopColor, background: cs.backgroundColor };
	})()`)
}

func (s *stack) uploadCount(t *testing.T) int {
	t.Helper()
	return eval[int](t, s, `document.querySelectorAll("#uploads > li").length`)
}

// Files dropped on the demo page's drop zone, several at once, all go up:
// progress reaches 100 %, the objects hold the bytes, and the previews
// show. While files are dragged over it, the zone looks different.
func TestDemoDragAndDrop(t *testing.T) {
	drags := []struct {
		name  string
		start func(*testing.T, *stack, []dropFile) dragger
	}{
		{"page events", newPageDrag},
		{"browser drag", newBrowserDrag},
	}
	for _, st := range stores {
		for _, dg := range drags {
			t.Run(st.name+"/"+dg.name, func(t *testing.T) {
				s := newStack(t, st.yaml, stackOptions{minio: st.minio})
				s.openDemo(t, st.images)
				files := []dropFile{
					{"cat.png", makePNG(t, 64, 48, 7), 64},
					{"dog.png", makePNG(t, 40, 30, 8), 40},
				}
				d := dg.start(t, s, files)

				idle := s.zone(t)
				if idle.State != "idle" {
					t.Fatalf("before the drag the zone is %q, want idle", idle.State)
				}
				// Over the zone, off it, and back: the look follows.
				for _, onZone := range []bool{true, false, true} {
					want := "idle"
					if onZone {
						want = "over"
					}
					d.over(t, s, onZone)
					s.waitFor(t, "the drop zone to be "+want, fmt.Sprintf(`document.getElementById("drop-zone").dataset.state === %q`, want))
					z := s.zone(t)
					if onZone && (z.Border == idle.Border || z.Background == idle.Background) {
						t.Errorf("with files over it the zone looks as when idle: %+v", z)
					}
					if !onZone && z != idle {
						t.Errorf("with files off it the zone looks %+v, want %+v as when idle", z, idle)
					}
					if n := s.uploadCount(t); n != 0 {
						t.Fatalf("dragging (not dropping) started %d uploads", n)
					}
				}

				d.drop(t, s)
				seen := map[string]bool{}
				for i := range files {
					it := s.waitSettled(t, i)
					name := eval[string](t, s, fmt.Sprintf(`document.getElementById("upload-%d").dataset.name`, i))
					var f *dropFile
					for j := range files {
						if files[j].name == name {
							f = &files[j]
						}
					}
					if f == nil || seen[name] {
						t.Fatalf("upload %d is of %q, which was not dropped or is a second upload of it", i, name)
					}
					seen[name] = true
					if it.State != "done" {
						t.Fatalf("%s: state %q, message %q", name, it.State, it.Message)
					}
					if it.Reported != "100" || it.Progress != "100" {
						t.Errorf("%s: client reported %q %%, bar at %q %%, want 100", name, it.Reported, it.Progress)
					}
					got, info := s.readObject(t, st.backend, it.Key, int64(len(f.data)))
					if !bytes.Equal(got, f.data) {
						t.Errorf("%s: object %s holds %d bytes that differ from the %d dropped", name, it.Key, len(got), len(f.data))
					}
					if info.ContentType != "image/png" {
						t.Errorf("%s: content type %q", name, info.ContentType)
					}
					s.waitFor(t, "the preview of "+name, fmt.Sprintf(
						`(() => { const i = document.querySelector('#upload-%d [data-role="preview"]'); return i && i.complete && i.naturalWidth > 0; })()`, i))
					if w := s.item(t, i).Preview; w != f.width {
						t.Errorf("%s: preview is %d px wide, want %d", name, w, f.width)
					}
				}
				if n := s.uploadCount(t); n != len(files) {
					t.Errorf("the drop started %d uploads, want %d", n, len(files))
				}
				if z := s.zone(t); z != idle {
					t.Errorf("after the drop the zone looks %+v, want %+v as when idle", z, idle)
				}
				if m := s.Gate.Methods(); m[st.method] != len(files) || len(m) != 1 {
					t.Errorf("uploads sent to the store by method: %v, want %d %s", m, len(files), st.method)
				}
			})
		}
	}
}
