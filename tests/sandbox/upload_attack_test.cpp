// Hostile uploads: zips built to write outside the code directory, to link host files into
// it, or to exhaust the disk while unpacking. Every one must be refused with 400, store
// nothing, and leave the daemon serving.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "sandbox_support.hpp"

namespace funcd::testing::sandbox {
namespace {

// python3 build_zip.py KIND OUT: writes one hostile zip. Link entries are Unix-mode entries
// (create_system 3, S_IFLNK in the high half of external_attr) whose data is the target.
const char* kZipBuilder = R"(import sys, zipfile
kind, out = sys.argv[1], sys.argv[2]
APP = "def handler(event, context):\n    return 1\n"

def entry(name, mode, compress=zipfile.ZIP_DEFLATED):
    zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    zi.create_system = 3
    zi.external_attr = mode << 16
    zi.compress_type = compress
    return zi

FILE, LINK = 0o100644, 0o120777
with zipfile.ZipFile(out, "w") as z:
    if kind != "bootstrap_symlink":
        z.writestr(entry("app.py", FILE), APP)
    if kind == "zipslip":
        z.writestr(entry("../evil.py", FILE), "x = 1\n")
    elif kind == "zipslip_nested":
        z.writestr(entry("lib/../../evil.py", FILE), "x = 1\n")
    elif kind == "absolute":
        z.writestr(entry("/etc/evil", FILE), "x\n")
    elif kind == "symlink_abs":
        z.writestr(entry("passwd", LINK), "/etc/passwd")
    elif kind == "symlink_rel":
        z.writestr(entry("lib/passwd", LINK), "../../../../../../../etc/passwd")
    elif kind == "symlink_dir_then_file":
        z.writestr(entry("etc", LINK), "/etc")
        z.writestr(entry("etc/evil", FILE), "x\n")
    elif kind == "hardlink":
        # The zip format has no hard-link entry type; the nearest a zip can express is a
        # link entry naming an absolute host path, which is what a hard link would expose.
        z.writestr(entry("shadow", LINK), "/etc/shadow")
    elif kind == "bomb":
        with z.open(entry("zeros.bin", FILE), "w") as f:
            block = bytes(1 << 20)
            for _ in range(300):
                f.write(block)
    elif kind == "too_many_entries":
        for i in range(10001):
            z.writestr(entry(f"d/f{i}", FILE, zipfile.ZIP_STORED), "")
    elif kind == "bootstrap_symlink":
        z.writestr(entry("bootstrap", LINK), "/bin/sh")
    else:
        raise SystemExit("unknown kind " + kind)
)";

class HostileZips {
public:
    HostileZips() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-hostile-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        std::ofstream(dir_ / "build_zip.py") << kZipBuilder;
    }
    ~HostileZips() { std::filesystem::remove_all(dir_); }

    std::string make(const std::string& kind) {
        auto out = dir_ / (kind + ".zip");
        std::string cmd = "python3 '" + (dir_ / "build_zip.py").string() + "' " + kind + " '" + out.string() + "'";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("building the " + kind + " zip failed");
        return read_file(out);
    }

private:
    std::filesystem::path dir_;
};

TEST_F(SandboxAttack, HostileUploadsAreRefusedAndStoreNothing) {
    auto d = start();
    const bool etc_evil_existed = std::filesystem::exists("/etc/evil");
    HostileZips zips;

    struct Case {
        std::string kind;
        std::string runtime;
    };
    const std::vector<Case> cases = {
        {"zipslip", "python3"},        {"zipslip_nested", "python3"},        {"absolute", "python3"},
        {"symlink_abs", "python3"},    {"symlink_rel", "python3"},           {"symlink_dir_then_file", "python3"},
        {"hardlink", "python3"},       {"bomb", "python3"},                  {"too_many_entries", "python3"},
        {"bootstrap_symlink", "provided"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.kind);
        std::string zip = zips.make(c.kind);
        if (c.kind == "bomb") {
            EXPECT_LT(zip.size(), 2u << 20) << "the bomb should be small when zipped";
        }
        json settings = {{"runtime", c.runtime}};
        if (c.runtime == "python3") settings["handler"] = "app.handler";
        auto r = d->deploy("up_" + c.kind, settings, zip);
        EXPECT_EQ(r.status, 400) << "accepted a hostile zip (" << c.kind << "): " << r.body;
        if (r.status == 400) {
            EXPECT_EQ(r.json()["error"]["type"], "InvalidParameterValueException") << r.body;
        }
        EXPECT_EQ(d->api("GET", "/v1/functions/up_" + c.kind).status, 404);
    }

    // Nothing was registered, and no code tree (or half-unpacked one) is left.
    auto list = d->api("GET", "/v1/functions");
    ASSERT_EQ(list.status, 200) << list.body;
    const json listed = list.json();
    std::vector<std::string> names;
    for (const auto& f : listed["functions"]) names.push_back(f["name"]);
    EXPECT_EQ(names, std::vector<std::string>{"benign"}) << list.body;
    auto code_entries = [&] {
        std::set<std::string> out;
        // A tree and its kept zip (<sha256>.zip) are one piece of code.
        for (const auto& e : std::filesystem::directory_iterator(d->data_dir() / "code"))
            out.insert(e.path().extension() == ".zip" ? e.path().stem().string() : e.path().filename().string());
        return out;
    };
    EXPECT_TRUE(eventually([&] { return code_entries() == std::set<std::string>{benign_sha_}; }))
        << "code directory holds more than the benign function's code";

    // Nothing landed outside the code directory either.
    EXPECT_FALSE(std::filesystem::exists(d->data_dir() / "code" / "evil.py"));
    EXPECT_FALSE(std::filesystem::exists(d->data_dir() / "evil.py"));
    if (!etc_evil_existed) {
        EXPECT_FALSE(std::filesystem::exists("/etc/evil")) << "a zip entry was written to the host's /etc";
        std::filesystem::remove("/etc/evil");
    }

    expect_still_serving(*d);
}

}  // namespace
}  // namespace funcd::testing::sandbox
