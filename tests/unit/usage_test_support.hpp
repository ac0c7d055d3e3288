#pragma once
// What the usage store's tests share: records, a scratch directory, the journal's lines.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "funcd/metering/usage_store.hpp"

namespace funcd::usage_testing {

namespace fs = std::filesystem;

// 2026-01-01T00:00:00Z, a whole second so start times format without rounding.
inline const SystemTime kT0 = from_unix_us(1'767'225'600'000'000);

inline UsageRecord make_record(std::string id, std::string function, SystemTime start, std::int64_t duration_us,
                               int memory_mb, Outcome outcome = Outcome::success,
                               std::optional<std::int64_t> init_us = std::nullopt) {
    UsageRecord r;
    r.request_id = std::move(id);
    r.function = std::move(function);
    r.version = 3;
    r.start = start;
    r.duration_us = duration_us;
    r.billed_ms = billed_ms_for(duration_us);
    r.memory_mb = memory_mb;
    r.max_memory_used_mb = 42;
    r.init_duration_us = init_us;
    r.outcome = outcome;
    return r;
}

inline std::string line_of(const UsageRecord& r) {
    fmt::memory_buffer out;
    append_journal_line(r, out);
    return std::string(out.data(), out.size());
}

inline std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The journal's segment files, oldest first.
inline std::vector<fs::path> segments(const fs::path& journal_dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(journal_dir))
        if (e.path().extension() == ".jsonl") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

// Every byte the journal holds, segments in order.
inline std::string journal_text(const fs::path& journal_dir) {
    std::string out;
    for (const auto& s : segments(journal_dir)) out += read_all(s);
    return out;
}

inline std::vector<std::string> ids(const std::vector<UsageRecord>& rs) {
    std::vector<std::string> out;
    for (const auto& r : rs) out.push_back(r.request_id);
    return out;
}

class UsageStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-metering-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path db() const { return dir_ / "funcd.db"; }
    fs::path journal() const { return dir_ / "usage.journal"; }
    std::unique_ptr<UsageStore> open(UsageStoreOptions options = {}) {
        return std::make_unique<UsageStore>(db(), journal(), options);
    }
    // A segment as an earlier run would have left it.
    void write_segment(std::uint64_t number, const std::string& bytes) {
        fs::create_directories(journal());
        std::ofstream(journal() / fmt::format("{:020}.jsonl", number), std::ios::binary) << bytes;
    }

    fs::path dir_;
};

}  // namespace funcd::usage_testing
