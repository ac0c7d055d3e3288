// How soon the dashboard paints, in headless chromium over loopback, against the browser's
// own floor in the same run: the first contentful paint of the daemon's /healthz (a few
// bytes of JSON, which chromium shows as text) after the same kind of navigation.
//
// Starts the daemon (this build's), deploys FUNCTIONS Python functions and invokes each
// once, then ROUNDS times each (median and worst):
//   - floor:     /healthz, first contentful paint;
//   - headers:   /ui/icon.svg, the smallest file served with the dashboard's headers: its
//                Cross-Origin-Opener-Policy makes chromium move the page to a new browsing
//                context group (a renderer process of its own) once the answer arrives;
//   - ui cold:   /ui signed out (the sign-in form) with the browser's cache cleared, so every
//                file is fetched: first contentful paint;
//   - ui warm:   the same with the browser's cache kept (each file revalidated, 304);
//   - list:      /ui signed in: first contentful paint, and when the last answer the functions
//                list needs has arrived (the latest responseEnd of the page's /v1 requests).
//
//   dashboard-paint [--rounds N] [--functions N]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "daemon_harness.hpp"
#include "headless_chromium.hpp"

namespace {

using funcd::testing::Daemon;
using funcd::testing::HeadlessChromium;
using nlohmann::json;

struct Figures {
    std::vector<double> ms;
    void add(double v) { ms.push_back(v); }
    double median() const {
        auto v = ms;
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    }
    double worst() const { return *std::max_element(ms.begin(), ms.end()); }
};

// The page's first contentful paint, in ms from the start of its navigation.
double first_contentful_paint(HeadlessChromium& b) {
    const std::string fcp =
        "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime";
    if (!b.wait_for(fcp)) throw std::runtime_error("no first contentful paint at " + b.evaluate("location.href").dump());
    return b.evaluate(fcp).get<double>();
}

void load(HeadlessChromium& b, const std::string& url) {
    b.navigate("about:blank");
    b.navigate(url);
}

long arg(int argc, char** argv, const std::string& name, long fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == name) return std::strtol(argv[i + 1], nullptr, 10);
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    const long rounds = std::max(1L, arg(argc, argv, "--rounds", 15));
    const long functions = std::max(1L, arg(argc, argv, "--functions", 20));

    Daemon d;
    for (long i = 0; i < functions; ++i) {
        const std::string name = "fn" + std::to_string(i);
        if (d.deploy(name, {{"runtime", "python3"}, {"handler", "app.handler"}},
                     funcd::testing::python_zip("def handler(event, context):\n    return 1\n"))
                .status != 201 ||
            d.invoke(name).status != 200) {
            std::fprintf(stderr, "dashboard-paint: deploying %s failed\n", name.c_str());
            return 1;
        }
    }
    const std::string base = "http://127.0.0.1:" + std::to_string(d.port());

    HeadlessChromium b;
    b.call("Network.enable");
    Figures floor, same_headers, cold, warm, list_paint, list_data;
    for (long r = 0; r < rounds; ++r) {
        load(b, base + "/healthz");
        floor.add(first_contentful_paint(b));
        load(b, base + "/ui/icon.svg");
        same_headers.add(first_contentful_paint(b));

        b.call("Network.clearBrowserCache");
        load(b, base + "/ui");
        cold.add(first_contentful_paint(b));
        load(b, base + "/ui");
        warm.add(first_contentful_paint(b));

        // Signed in (the token in the tab's sessionStorage, as the sign-in form keeps it).
        b.evaluate("sessionStorage.setItem('funcd.api-token', " + json(Daemon::kToken).dump() + ")");
        load(b, base + "/ui");
        list_paint.add(first_contentful_paint(b));
        const std::string filled =
            "document.querySelectorAll('tr[data-function]').length === " + std::to_string(functions) +
            " && !document.querySelector('.pending')";
        if (!b.wait_for(filled)) throw std::runtime_error("the functions list was not filled");
        list_data.add(b.evaluate("Math.max(...performance.getEntriesByType('resource')"
                                 ".filter(e => e.name.includes('/v1/')).map(e => e.responseEnd))")
                          .get<double>());
        b.evaluate("sessionStorage.clear()");
    }
    // The floor's page (/healthz) names no icon, so chromium asks for /favicon.ico, which the
    // daemon does not serve; any other error is the dashboard's and fails the run.
    bool failed = false;
    for (const auto& e : b.errors()) {
        if (e.find("/favicon.ico") != std::string::npos) continue;
        std::fprintf(stderr, "dashboard-paint: page error: %s\n", e.c_str());
        failed = true;
    }
    if (failed) return 1;

    std::printf("| %-44s | %10s | %8s | %9s |\n", "dashboard paint (ms from navigation)", "median", "worst",
                "vs floor");
    std::printf("|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(12, '-').c_str(),
                std::string(10, '-').c_str(), std::string(11, '-').c_str());
    auto row = [&](const std::string& what, const Figures& f) {
        std::printf("| %-44s | %10.1f | %8.1f | %8.2fx |\n", what.c_str(), f.median(), f.worst(),
                    f.median() / floor.median());
    };
    row("floor: /healthz first contentful paint", floor);
    row("/ui/icon.svg (the dashboard's headers)", same_headers);
    row("/ui signed out, cache cleared: first paint", cold);
    row("/ui signed out, cached (304s): first paint", warm);
    row("/ui signed in: first paint", list_paint);
    row("/ui signed in: last answer of " + std::to_string(functions) + " functions' list", list_data);
    std::printf("(%ld rounds, daemon %s)\n", rounds, FUNCD_BINARY);
    return 0;
}
