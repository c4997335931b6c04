package browsertest

// Helpers for driving the page itself (index.html + web/ui.js) the way a
// person does: real mouse clicks and key presses through DevTools, files put
// into the page's <input type=file>, waiting for text to appear, and
// screenshots.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/chromedp/chromedp"
)

// PagePath is the URL path of the page.
const PagePath = "/"

// ScreenshotDir is where page tests save their screenshots, relative to the
// repository root (gitignored).
const ScreenshotDir = "test-output/page"

// run runs chromedp actions on the tab with a timeout.
func (p *Page) run(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Click clicks the first element matching the CSS selector with the mouse
// (scrolling it into view first), after waiting up to 30 s for it to be
// visible.
func (p *Page) Click(selector string) error {
	if err := p.run(30*time.Second, chromedp.Click(chromedp.CSS(selector))); err != nil {
		return fmt.Errorf("clicking %s: %w", selector, err)
	}
	return nil
}

// TypeInto replaces the value of the input matching selector by typing text
// into it with key events (so input events fire as they do for a person).
func (p *Page) TypeInto(selector, text string) error {
	// Select what is there, so the first key replaces it.
	err := p.Eval(`const e = document.querySelector(args[0]); if (!e) throw new Error("no " + args[0]); e.focus(); e.select();`, nil, selector)
	if err == nil {
		err = p.run(30*time.Second, chromedp.SendKeys(chromedp.CSS(selector), text))
	}
	if err != nil {
		return fmt.Errorf("typing into %s: %w", selector, err)
	}
	return nil
}

// WaitFor polls the JavaScript expression cond (evaluated in the page, may
// use await and the helpers module H) every 50 ms until it is truthy and
// returns its value decoded into out (nil: ignored).
func (p *Page) WaitFor(cond string, timeout time.Duration, out any) error {
	body := fmt.Sprintf(`const deadline = Date.now() + args[0];
		for (;;) {
			const v = await (async () => (%s))();
			if (v) return v;
			if (Date.now() > deadline) throw new Error("timed out after " + args[0] + " ms waiting for: " + args[1]);
			await H.sleep(50);
		}`, cond)
	var raw json.RawMessage
	if err := p.Eval(body, &raw, timeout.Milliseconds(), cond); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// Text returns the textContent of the first element matching selector ("" when none).
func (p *Page) Text(selector string) (string, error) {
	var s string
	err := p.Eval(`const e = document.querySelector(args[0]); return e ? e.textContent : "";`, &s, selector)
	return s, err
}

// SetViewport sets the tab's viewport (CSS pixels, device scale 1).
func (p *Page) SetViewport(width, height int64) error {
	return p.run(30*time.Second, chromedp.EmulateViewport(width, height))
}

// Reload reloads the tab and waits for the load event.
func (p *Page) Reload() error {
	return p.run(60*time.Second, chromedp.Reload())
}

// Screenshot saves a PNG of the whole page to path (directories created).
func (p *Page) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf, 0o644)
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// ScreenshotPath is where a test's screenshot goes:
// <repo>/test-output/page/<test name>[-<suffix>].png.
func ScreenshotPath(root, testName, suffix string) string {
	n := unsafeFileChars.ReplaceAllString(testName, "_")
	if suffix != "" {
		n += "-" + unsafeFileChars.ReplaceAllString(suffix, "_")
	}
	return filepath.Join(root, ScreenshotDir, n+".png")
}
