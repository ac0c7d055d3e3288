// The zip `funcd deploy` makes of a directory: the same tree gives the same bytes, and
// .funcdignore leaves files out.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "funcd/cli/cli_error.hpp"
#include "funcd/cli/deploy_archive.hpp"

namespace funcd::cli {
namespace {

namespace fs = std::filesystem;

class TempTree {
public:
    TempTree() {
        std::string tmpl = (fs::temp_directory_path() / "funcd-cli-zip-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
        root_ = tmpl;
    }
    ~TempTree() { fs::remove_all(root_); }
    const fs::path& root() const { return root_; }
    void write(const std::string& rel, const std::string& data, fs::perms perms = fs::perms(0644)) const {
        const fs::path p = root_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << data;
        fs::permissions(p, perms);
    }

private:
    fs::path root_;
};

struct ZipEntry {
    std::string data;
    int mode = 0;
    long mtime = 0;
    std::string link;
};

// What a zip holds, read back with libarchive, in the order it holds it.
std::vector<std::pair<std::string, ZipEntry>> read_zip(const std::string& zip) {
    std::vector<std::pair<std::string, ZipEntry>> out;
    archive* a = archive_read_new();
    archive_read_support_format_zip(a);
    EXPECT_EQ(archive_read_open_memory(a, zip.data(), zip.size()), ARCHIVE_OK);
    archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        ZipEntry z;
        z.mode = static_cast<int>(archive_entry_mode(e));
        z.mtime = static_cast<long>(archive_entry_mtime(e));
        if (const char* l = archive_entry_symlink(e)) z.link = l;
        char buf[4096];
        for (la_ssize_t n; (n = archive_read_data(a, buf, sizeof buf)) > 0;) z.data.append(buf, static_cast<std::size_t>(n));
        out.emplace_back(archive_entry_pathname(e), z);
    }
    archive_read_free(a);
    return out;
}

std::vector<std::string> names(const std::vector<std::pair<std::string, ZipEntry>>& entries) {
    std::vector<std::string> out;
    for (const auto& [n, e] : entries) out.push_back(n);
    return out;
}

TEST(DeployArchive, SameTreeGivesSameBytesWhateverTheTimesOrderOrZone) {
    TempTree a;
    a.write("zeta.py", "z = 1\n");
    a.write("app.py", "def handler(e, c):\n    return e\n");
    a.write("lib/util.py", "X = 2\n");
    a.write("bin/tool", "#!/bin/sh\n", fs::perms(0700));
    const std::string first = zip_directory(a.root());

    // The same content written in another order, later, with other times and umask
    // leftovers, zipped under another time zone.
    TempTree b;
    b.write("lib/util.py", "X = 2\n", fs::perms(0600));
    b.write("bin/tool", "#!/bin/sh\n", fs::perms(0755));
    b.write("app.py", "def handler(e, c):\n    return e\n", fs::perms(0664));
    b.write("zeta.py", "z = 1\n");
    fs::last_write_time(b.root() / "app.py", fs::file_time_type::clock::now() - std::chrono::hours(1000));
    const char* old_tz = std::getenv("TZ");
    ::setenv("TZ", "XYZ-08", 1);  // POSIX form: eight hours ahead of UTC, no zone database needed
    ::tzset();
    const std::string second = zip_directory(b.root());
    if (old_tz) ::setenv("TZ", old_tz, 1);
    else ::unsetenv("TZ");
    ::tzset();

    EXPECT_EQ(first, second) << "the same tree must give the same zip";
    EXPECT_EQ(first, zip_directory(a.root())) << "zipping twice gives the same bytes";

    const auto entries = read_zip(first);
    EXPECT_EQ(names(entries), (std::vector<std::string>{"app.py", "bin/", "bin/tool", "lib/", "lib/util.py", "zeta.py"}));
    std::map<std::string, ZipEntry> by_name(entries.begin(), entries.end());
    EXPECT_EQ(by_name["app.py"].data, "def handler(e, c):\n    return e\n");
    EXPECT_EQ(by_name["app.py"].mode & 07777, 0644);
    EXPECT_EQ(by_name["bin/tool"].mode & 07777, 0755) << "the owner's execute bit is kept";
    EXPECT_EQ(by_name["lib/util.py"].mode & 07777, 0644);
    EXPECT_EQ(by_name["app.py"].mtime, 315532800) << "every entry carries the fixed time";
}

TEST(DeployArchive, DifferentContentGivesDifferentBytes) {
    TempTree a;
    a.write("app.py", "A = 1\n");
    TempTree b;
    b.write("app.py", "A = 2\n");
    EXPECT_NE(zip_directory(a.root()), zip_directory(b.root()));
}

TEST(DeployArchive, FuncdignoreLeavesFilesOut) {
    TempTree t;
    t.write("app.py", "x");
    t.write("notes.md", "x");
    t.write("docs/readme.md", "x");
    t.write("keep.md", "x");
    t.write("build/out.o", "x");
    t.write("src/build/generated.py", "x");
    t.write("src/app.pyc", "x");
    t.write("src/__pycache__/app.cpython-311.pyc", "x");
    t.write("tests/deep/a/test_x.py", "x");
    t.write("logs", "a file named like a directory rule");
    t.write("logs.d/x", "x");
    t.write(".env", "SECRET=1");
    t.write(".git/HEAD", "ref");
    fs::create_directories(t.root() / "empty");
    t.write(".funcdignore",
            "# build output\n"
            "*.md\n"
            "!keep.md\n"
            "/build/\n"
            "*.pyc\n"
            "__pycache__/\n"
            "tests/**\n"
            "logs*/\n"
            "\n"
            ".env\n");
    // docs/ and tests/ lose every entry, so they go too; empty/ was empty to begin with.
    EXPECT_EQ(archive_paths(t.root()), (std::vector<std::string>{"app.py", "empty", "keep.md", "logs", "src", "src/build",
                                                                  "src/build/generated.py"}));
    const auto entries = read_zip(zip_directory(t.root()));
    EXPECT_EQ(names(entries), (std::vector<std::string>{"app.py", "empty/", "keep.md", "logs", "src/", "src/build/",
                                                         "src/build/generated.py"}));
}

TEST(DeployArchive, SymlinksStayLinks) {
    TempTree t;
    t.write("real.py", "x = 1\n");
    fs::create_symlink("real.py", t.root() / "alias.py");
    const auto entries = read_zip(zip_directory(t.root()));
    ASSERT_EQ(names(entries), (std::vector<std::string>{"alias.py", "real.py"}));
    EXPECT_EQ(entries[0].second.link, "real.py");
}

TEST(DeployArchive, RefusesWhatCannotBeZipped) {
    TempTree t;
    EXPECT_THROW(zip_directory(t.root() / "missing"), CliError);
    ASSERT_EQ(::mkfifo((t.root() / "pipe").c_str(), 0600), 0);
    try {
        zip_directory(t.root());
        FAIL() << "a FIFO cannot go into a zip";
    } catch (const CliError& e) {
        EXPECT_EQ(e.code(), ExitCode::usage);
        EXPECT_NE(std::string(e.what()).find(".funcdignore"), std::string::npos) << e.what();
    }
    t.write(".funcdignore", "pipe\n");
    EXPECT_NO_THROW(zip_directory(t.root()));
}

TEST(DeployArchive, GlobMatching) {
    EXPECT_TRUE(glob_match("*.py", "app.py"));
    EXPECT_FALSE(glob_match("*.py", "src/app.py")) << "* stays within a segment";
    EXPECT_TRUE(glob_match("src/*.py", "src/app.py"));
    EXPECT_TRUE(glob_match("**/*.py", "app.py"));
    EXPECT_TRUE(glob_match("**/*.py", "a/b/app.py"));
    EXPECT_TRUE(glob_match("a/**/b", "a/b"));
    EXPECT_TRUE(glob_match("a/**/b", "a/x/y/b"));
    EXPECT_FALSE(glob_match("a/**/b", "a/xb"));
    EXPECT_TRUE(glob_match("a/**", "a/x/y"));
    EXPECT_TRUE(glob_match("file?.txt", "file1.txt"));
    EXPECT_FALSE(glob_match("file?.txt", "file10.txt"));
    EXPECT_TRUE(glob_match("[a-c]x", "bx"));
    EXPECT_FALSE(glob_match("[!a-c]x", "bx"));
    EXPECT_TRUE(glob_match("[!a-c]x", "dx"));
    EXPECT_TRUE(glob_match("\\*lit", "*lit"));
    EXPECT_FALSE(glob_match("\\*lit", "xlit"));
    EXPECT_TRUE(glob_match("[x", "[x")) << "an unclosed class is literal";
}

}  // namespace
}  // namespace funcd::cli
