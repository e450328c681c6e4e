//! A page as a person sees it: headless Chromium renders an HTML file at 1300 px width and a
//! script in the page reports what went wrong. Shared by the report's test
//! (`crates/gan-metrics/tests/report_browser.rs`) and predict's (`tests/score_eval_cli.rs`, through
//! `#[path]`). Needs `chromium` (Debian's package; `.ci/run` installs it and sets
//! `XRAY_GAN_REQUIRE_BROWSER=1`, so CI cannot skip it).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::process::Command;

/// Runs in the page after load; its verdict lands in the DOM that `--dump-dom` prints.
const CHECK: &str = r#"<script>
window.addEventListener('load', () => {
  const overflow = document.documentElement.scrollWidth - window.innerWidth;
  const images = Array.from(document.images);
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  const captions = Array.from(document.querySelectorAll('figcaption'));
  const wide = captions.filter(c => c.scrollWidth > c.clientWidth + 1).length;
  const tables = Array.from(document.querySelectorAll('table'));
  const scrolling = tables.filter(t => t.scrollWidth > t.clientWidth + 1).length;
  const out = document.createElement('pre');
  out.id = 'verdict';
  out.textContent = `VERDICT overflow=${overflow} images=${images.length} broken=${broken} wide_captions=${wide} scrolling_tables=${scrolling}`;
  document.body.appendChild(out);
});
</script>"#;

/// What the page showed.
#[derive(Debug)]
pub struct Verdict {
    /// Page width beyond the window, in px (≤ 0: no horizontal scrollbar).
    pub overflow: i64,
    pub images: i64,
    /// Images that did not load.
    pub broken: i64,
    /// Captions wider than their tile.
    pub wide_captions: i64,
    /// Tables that scroll sideways inside the page.
    pub scrolling_tables: i64,
}

fn browser() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Renders the page at `page` (a copy with the check script, written beside it so that relative
/// image paths resolve) and returns its verdict; `None` when no Chromium is installed and
/// `XRAY_GAN_REQUIRE_BROWSER` is not set (the caller says it skipped).
pub fn check(page: &Path) -> Option<Verdict> {
    let Some(browser) = browser() else {
        assert!(
            std::env::var_os("XRAY_GAN_REQUIRE_BROWSER").is_none(),
            "XRAY_GAN_REQUIRE_BROWSER is set but no chromium was found"
        );
        eprintln!(
            "no chromium: the browser check of {} is skipped",
            page.display()
        );
        return None;
    };
    let html = std::fs::read_to_string(page).unwrap();
    let checked = page.with_extension("browser-check.html");
    std::fs::write(
        &checked,
        html.replace("</body>", &format!("{CHECK}</body>")),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1300,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!(
            "file://{}",
            checked.canonicalize().unwrap().display()
        ))
        .output()
        .unwrap();
    std::fs::remove_file(&checked).ok();
    let dom = String::from_utf8_lossy(&out.stdout);
    let verdict = dom
        .lines()
        .find_map(|l| l.split("<pre id=\"verdict\">VERDICT ").nth(1))
        .unwrap_or_else(|| panic!("no verdict: {}", String::from_utf8_lossy(&out.stderr)))
        .to_string();
    let value = |key: &str| -> i64 {
        verdict
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.split('<').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {verdict}"))
    };
    Some(Verdict {
        overflow: value("overflow"),
        images: value("images"),
        broken: value("broken"),
        wide_captions: value("wide_captions"),
        scrolling_tables: value("scrolling_tables"),
    })
}
