// How long finding one request's records takes in a large function log, through the
// per-file index, against a full scan of the same files in the same run.
//
// Writes RECORDS records through FunctionLog with the default limits (64 MiB files, 4 kept),
// as the daemon writes them: requests of five records (START, two lines of output, END,
// REPORT), four running at once so their records interleave, flushed every 2,000 records.
// Then, REPEAT times each (median):
//   - lookup: query_function_log for one request id (the sidecars name its ranges), for a
//     request in the oldest kept file and one in the live file (after a first lookup, timed
//     on its own, which rewrites the rolled-over files' indexes sorted);
//   - baseline: every line of every file read and its request id compared (the least a
//     query without an index must do).
//
//   log-lookup [--records N] [--repeat N] [--dir PATH]
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "funcd/logs/function_log.hpp"
#include "funcd/logs/log_query.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double median_ms(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class F>
double time_ms(F&& f) {
    const auto t0 = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string request_id(std::int64_t n) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08llx-4a1c-4b2d-9e3f-%012llx", static_cast<unsigned long long>(n * 2654435761u),
                  static_cast<unsigned long long>(n));
    return buf;
}

// Every line of every file, its request id compared: what a lookup without an index costs.
std::size_t scan(const fs::path& live, int files, const std::string& id) {
    std::size_t found = 0;
    std::vector<char> block(256 * 1024);
    for (int n = files - 1; n >= 0; --n) {
        fs::path p = live;
        if (n > 0) p += "." + std::to_string(n);
        const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        std::string carry;
        for (;;) {
            const ssize_t got = ::read(fd, block.data(), block.size());
            if (got <= 0) break;
            std::string_view data(block.data(), static_cast<std::size_t>(got));
            while (!data.empty()) {
                const auto nl = data.find('\n');
                if (nl == std::string_view::npos) {
                    carry.append(data);
                    break;
                }
                std::string_view line = data.substr(0, nl);
                if (!carry.empty()) {
                    carry.append(line);
                    line = carry;
                }
                if (funcd::log_line_request_id(line) == id) ++found;
                carry.clear();
                data.remove_prefix(nl + 1);
            }
        }
        ::close(fd);
    }
    return found;
}

}  // namespace

int main(int argc, char** argv) {
    std::int64_t records = 1'000'000;
    int repeat = 5;
    fs::path dir;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--records")) records = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    }
    spdlog::set_level(spdlog::level::warn);
    const bool own_dir = dir.empty();
    if (own_dir) {
        std::string tmpl = (fs::temp_directory_path() / "funcd-log-lookup-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) return 1;
        dir = tmpl;
    }
    const fs::path live = dir / "fn.log";
    const funcd::OutputLimits limits;  // the daemon's defaults
    const std::int64_t requests = records / 5;
    const double write_ms = time_ms([&] {
        funcd::FunctionLog log(live, limits);
        constexpr int kConcurrent = 4;
        std::int64_t written = 0;
        for (std::int64_t base = 0; base < requests; base += kConcurrent) {
            const std::int64_t n = std::min<std::int64_t>(kConcurrent, requests - base);
            std::vector<std::string> ids;
            for (std::int64_t k = 0; k < n; ++k) ids.push_back(request_id(base + k));
            for (const auto& id : ids) log.platform_for(id, "START RequestId: {} Version: $LATEST", id);
            for (const auto& id : ids) log.output(id, "handling the event for customer 4711: resizing 3 images");
            for (const auto& id : ids) log.output(id, R"({"level":"INFO","message":"stored thumbnail","ms":12})");
            for (const auto& id : ids) log.platform_for(id, "END RequestId: {}", id);
            for (const auto& id : ids)
                log.platform_for(id,
                                 "REPORT RequestId: {}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 "
                                 "MB\tMax Memory Used: 41 MB",
                                 id);
            written += 5 * n;
            if (written % 2000 < 5 * kConcurrent) log.flush();
        }
    });
    std::uintmax_t log_bytes = 0, index_bytes = 0;
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".idx") index_bytes += e.file_size();
        else {
            log_bytes += e.file_size();
            ++files;
        }
    }
    // A request near the start of the oldest kept file (the first files may have rolled
    // out): its number is the last field of the first request id found there.
    std::int64_t oldest_kept = 0;
    for (int n = limits.log_files - 1; n >= 0; --n) {
        fs::path p = live;
        if (n > 0) p += "." + std::to_string(n);
        std::ifstream in(p);
        std::string line;
        bool found = false;
        while (std::getline(in, line)) {
            const std::string id(funcd::log_line_request_id(line));
            if (id.size() < 12) continue;
            oldest_kept = std::stoll(id.substr(id.size() - 12), nullptr, 16) + requests / 100;
            found = true;
            break;
        }
        if (found) break;
    }
    const std::string old_id = request_id(std::min(oldest_kept, requests - 1));
    const std::string new_id = request_id(requests - 3);
    std::vector<double> lookup_old, lookup_new, full_scan;
    std::size_t found_old = 0, found_new = 0, found_scan = 0;
    // The first lookup also rewrites the rolled-over files' indexes sorted (once per file).
    const double first_ms = time_ms([&] {
        funcd::LogFilter f;
        f.request_ids = {request_id(requests / 2)};
        funcd::LogResults out(1000, 16 << 20);
        funcd::query_function_log(live, limits.log_files, "fn", f, out);
    });
    for (int r = 0; r < repeat; ++r) {
        lookup_old.push_back(time_ms([&] {
            funcd::LogFilter f;
            f.request_ids = {old_id};
            funcd::LogResults out(1000, 16 << 20);
            funcd::query_function_log(live, limits.log_files, "fn", f, out);
            found_old = out.records().size();
        }));
        lookup_new.push_back(time_ms([&] {
            funcd::LogFilter f;
            f.request_ids = {new_id};
            funcd::LogResults out(1000, 16 << 20);
            funcd::query_function_log(live, limits.log_files, "fn", f, out);
            found_new = out.records().size();
        }));
        full_scan.push_back(time_ms([&] { found_scan = scan(live, limits.log_files, old_id); }));
    }
    const double lo = median_ms(lookup_old), ln = median_ms(lookup_new), fsn = median_ms(full_scan);
    std::printf("log-lookup: %lld records written in %.0f ms; %d files, %.1f MiB of log, %.1f MiB of index\n",
                static_cast<long long>(records), write_ms, files, log_bytes / 1048576.0, index_bytes / 1048576.0);
    std::printf("| query (median of %d) | time | records |\n|---|---|---|\n", repeat);
    std::printf("| first lookup (sorts the rolled-over files' indexes) | %.3f ms | 5 |\n", first_ms);
    std::printf("| one request, oldest file (index) | %.3f ms | %zu |\n", lo, found_old);
    std::printf("| one request, live file (index) | %.3f ms | %zu |\n", ln, found_new);
    std::printf("| baseline: full scan for one request | %.3f ms | %zu |\n", fsn, found_scan);
    std::printf("full scan / lookup: %.0fx (oldest file), %.0fx (live file)\n", fsn / lo, fsn / ln);
    if (own_dir) fs::remove_all(dir);
    return found_old == 5 && found_new == 5 && found_scan == 5 ? 0 : 1;
}
