// File-upload triggers through the real daemon: one event per completed file, S3's event
// shape, the directories mounted into the sandbox, and validation.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Prints each event; reads the file through its mount and writes a result to the output
// mount when there is one.
const char* kOnFilePy = R"(import json, os, urllib.parse
def handler(event, context):
    print("EVENT " + json.dumps(event, sort_keys=True))
    rec = event["Records"][0]
    key = urllib.parse.unquote_plus(rec["s3"]["object"]["key"])
    trigger = rec["s3"]["configurationId"]
    src = os.path.join("/mnt", trigger, key)
    data = open(src, "rb").read() if os.path.exists(src) else None
    out = os.path.join("/mnt", trigger + "-out")
    if data is not None and os.path.isdir(out):
        with open(os.path.join(out, os.path.basename(key) + ".len"), "w") as f:
            f.write(str(len(data)))
    return {"read": None if data is None else len(data)}
)";

std::vector<json> events_seen(Daemon& d, const std::string& name) { return logged_json(d, name, "EVENT "); }

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "funcd-files-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

TEST(FileTrigger, ASlowlyWrittenFileFiresOnceWhenComplete) {
    Daemon d;
    TempDir dir;
    fs::create_directories(dir.path / "uploads");
    ASSERT_EQ(d.deploy("onfile", python_settings(), python_zip(kOnFilePy)).status, 201);
    json def{{"directory", (dir.path / "uploads").string()}, {"patterns", {"*.jpg"}}, {"events", {"created"}}};
    auto put = d.api("PUT", "/v1/functions/onfile/file-triggers/photos", def.dump());
    ASSERT_EQ(put.status, 201) << put.body;
    EXPECT_EQ(put.json()["mount"], "/mnt/photos");

    {
        int fd = ::open((dir.path / "uploads" / "my photo.jpg").c_str(), O_WRONLY | O_CREAT, 0644);
        ASSERT_GE(fd, 0);
        for (const char* part : {"hello", " ", "world"}) {
            ASSERT_EQ(::write(fd, part, std::strlen(part)), static_cast<ssize_t>(std::strlen(part)));
            std::this_thread::sleep_for(300ms);
        }
        EXPECT_TRUE(events_seen(d, "onfile").empty()) << "nothing before the file is complete";
        ::close(fd);
    }
    std::ofstream(dir.path / "uploads" / "notes.txt") << "not a photo";
    ASSERT_TRUE(eventually([&] { return events_seen(d, "onfile").size() == 1; }, 10s));
    std::this_thread::sleep_for(1s);
    auto events = events_seen(d, "onfile");
    ASSERT_EQ(events.size(), 1u) << "once, and only for the matching file";
    const json& rec = events[0]["Records"][0];
    EXPECT_EQ(rec["eventSource"], "aws:s3");
    EXPECT_EQ(rec["eventName"], "ObjectCreated:Put");
    EXPECT_EQ(rec["s3"]["bucket"]["name"], "uploads");
    EXPECT_EQ(rec["s3"]["object"]["key"], "my+photo.jpg");
    EXPECT_EQ(rec["s3"]["object"]["size"], 11);
    EXPECT_EQ(rec["s3"]["object"]["eTag"], "5eb63bbbe01eeed093cb22bb8f5acdc3");  // md5("hello world")
    EXPECT_EQ(rec["s3"]["configurationId"], "photos");

    // Files in directories created later count too, keyed by their relative path.
    fs::create_directories(dir.path / "uploads" / "2026" / "11");
    std::ofstream(dir.path / "uploads" / "2026" / "11" / "b.jpg") << "xyz";
    ASSERT_TRUE(eventually([&] { return events_seen(d, "onfile").size() == 2; }, 10s));
    EXPECT_EQ(events_seen(d, "onfile")[1]["Records"][0]["s3"]["object"]["key"], "2026/11/b.jpg");

    auto list = d.api("GET", "/v1/functions/onfile/file-triggers").json()["file_triggers"];
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(d.api("DELETE", "/v1/functions/onfile/file-triggers/photos").status, 204);
    std::ofstream(dir.path / "uploads" / "after.jpg") << "late";
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(events_seen(d, "onfile").size(), 2u) << "a deleted trigger does not fire";
}

TEST(FileTrigger, TheFunctionReadsTheFileAndWritesToItsOutputDirectory) {
    Daemon d;
    TempDir dir;
    fs::create_directories(dir.path / "in");
    fs::create_directories(dir.path / "out");
    // The output directory's owner: what the function writes there must be theirs.
    constexpr uid_t kOwner = 4242;
    ASSERT_EQ(::chown((dir.path / "out").c_str(), kOwner, kOwner), 0);
    ASSERT_EQ(d.deploy("onfile", python_settings(), python_zip(kOnFilePy)).status, 201);
    json def{{"directory", (dir.path / "in").string()}, {"output_directory", (dir.path / "out").string()}};
    auto put = d.api("PUT", "/v1/functions/onfile/file-triggers/inbox", def.dump());
    ASSERT_EQ(put.status, 201) << put.body;
    EXPECT_EQ(put.json()["output_mount"], "/mnt/inbox-out");

    std::ofstream(dir.path / "in" / "data.bin") << std::string(1000, 'x');
    const fs::path result = dir.path / "out" / "data.bin.len";
    ASSERT_TRUE(eventually([&] { return fs::exists(result); }, 15s)) << read_file(d.data_dir() / "logs" / "onfile.log");
    EXPECT_EQ(read_file(result), "1000");
    struct stat st {};
    ASSERT_EQ(::stat(result.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kOwner);
    EXPECT_EQ(st.st_gid, kOwner);
}

TEST(FileTrigger, ImageResizeExampleWritesThreeCopies) {
    Daemon d;
    TempDir dir;
    fs::create_directories(dir.path / "uploads");
    fs::create_directories(dir.path / "thumbnails");
    ASSERT_EQ(::chown((dir.path / "thumbnails").c_str(), 4242, 4242), 0);
    const std::string code =
        make_zip({{"lambda_function.py",
                   {read_file(std::string(FUNCD_SOURCE_DIR) + "/examples/image-resize/lambda_function.py"), 0644}}});
    auto dep = d.deploy("image-resize", {{"runtime", "python3"}, {"memory_mb", 512}, {"timeout_s", 30}}, code);
    ASSERT_EQ(dep.status, 201) << dep.body;
    json def{{"directory", (dir.path / "uploads").string()},
             {"patterns", {"*.ppm"}},
             {"output_directory", (dir.path / "thumbnails").string()}};
    ASSERT_EQ(d.api("PUT", "/v1/functions/image-resize/file-triggers/uploads", def.dump()).status, 201);

    // A 1000x500 image in the simplest format Pillow reads.
    std::string ppm = "P6\n1000 500\n255\n";
    for (int i = 0; i < 1000 * 500; ++i) ppm += std::string{char(i % 256), char((i / 7) % 256), char(90)};
    std::ofstream(dir.path / "uploads" / "wide.ppm", std::ios::binary) << ppm;

    const fs::path out = dir.path / "thumbnails" / "wide";
    // Done when its invocation is metered: the files are complete by then.
    ASSERT_TRUE(eventually(
        [&] { return d.api("GET", "/v1/usage/records?function=image-resize").json()["records"].size() == 1; }, 20s))
        << read_file(d.data_dir() / "logs" / "image-resize.log");
    EXPECT_EQ(d.api("GET", "/v1/usage/records?function=image-resize").json()["records"][0]["outcome"], "success")
        << read_file(d.data_dir() / "logs" / "image-resize.log");
    for (const char* name : {"thumbnail.jpg", "medium.jpg", "full.jpg"}) {
        ASSERT_TRUE(fs::exists(out / name)) << name;
        const std::string jpeg = read_file(out / name);
        EXPECT_EQ(jpeg.substr(0, 2), "\xFF\xD8") << name << " is a JPEG";
    }
    EXPECT_LT(fs::file_size(out / "thumbnail.jpg"), fs::file_size(out / "medium.jpg"));
}

TEST(FileTrigger, BadDefinitionsAreRefused) {
    Daemon d;
    TempDir dir;
    fs::create_directories(dir.path / "in" / "out");
    fs::create_directories(dir.path / "rootout");
    ASSERT_EQ(d.deploy("f", python_settings(), python_zip(kOnFilePy)).status, 201);
    const std::string in = (dir.path / "in").string();
    struct Case {
        json body;
        const char* needle;
    } cases[] = {
        {json{{"patterns", {"*"}}}, "directory is required"},
        {json{{"directory", "relative/path"}}, "absolute"},
        {json{{"directory", (dir.path / "missing").string()}}, "not an existing directory"},
        {json{{"directory", in}, {"events", {"deleted"}}}, "created"},
        {json{{"directory", in}, {"patterns", {"a/b"}}}, "patterns"},
        {json{{"directory", in}, {"output_directory", (dir.path / "in" / "out").string()}}, "inside"},
        {json{{"directory", in}, {"output_directory", (dir.path / "rootout").string()}}, "owned by root"},
        {json{{"directory", in}, {"when", 1}}, "when"},
    };
    for (const auto& c : cases) {
        auto r = d.api("PUT", "/v1/functions/f/file-triggers/t", c.body.dump());
        EXPECT_EQ(r.status, 400) << c.body.dump();
        EXPECT_NE(r.body.find(c.needle), std::string::npos) << c.body.dump() << " -> " << r.body;
    }
    EXPECT_EQ(d.api("PUT", "/v1/functions/nope/file-triggers/t", json{{"directory", in}}.dump()).status, 404);
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/file-triggers/bad!name", json{{"directory", in}}.dump()).status, 400);
    EXPECT_TRUE(d.api("GET", "/v1/functions/f/file-triggers").json()["file_triggers"].empty());
}

}  // namespace
}  // namespace funcd::testing

namespace funcd::testing {
namespace {

// After a restart the provisioned workers start at once; they must be made with every part
// of the daemon wired, the file triggers' mounts included.
TEST(FileTrigger, ProvisionedWorkersAfterARestartSeeTheMounts) {
    TempDir dir;
    fs::create_directories(dir.path / "uploads");
    const char* kListMnt = R"(import os
def handler(event, context):
    return {"mnt": sorted(os.listdir("/mnt")) if os.path.isdir("/mnt") else None,
            "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
)";
    fs::path data;
    {
        Daemon d;
        d.keep_data_dir();
        data = d.data_dir();
        json s = python_settings();
        s["provisioned_concurrency"] = 1;
        ASSERT_EQ(d.deploy("warmfiles", s, python_zip(kListMnt)).status, 201);
        json def{{"directory", (dir.path / "uploads").string()}, {"patterns", {"*"}}, {"events", {"created"}}};
        ASSERT_EQ(d.api("PUT", "/v1/functions/warmfiles/file-triggers/photos", def.dump()).status, 201);
    }
    struct Cleanup {
        fs::path dir;
        ~Cleanup() {
            std::system(("chmod -R u+w '" + dir.string() + "' 2>/dev/null").c_str());
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{data};
    Daemon again({}, data);
    ASSERT_TRUE(eventually([&] {
        return again.api("GET", "/v1/functions/warmfiles").json()["provisioned"]["ready"] == 1;
    }, 10s)) << "the provisioned worker came back";
    auto r = again.invoke("warmfiles");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["init"], "provisioned-concurrency") << r.body;
    EXPECT_EQ(r.json()["mnt"], json::array({"photos"})) << r.body;
}

}  // namespace
}  // namespace funcd::testing
