#pragma once
// Zips built in memory for tests, including ones no honest tool would produce.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace funcd::testing {

// Builds zips in memory, including ones no honest tool would produce.
class ZipBuilder {
public:
    ZipBuilder& file(const std::string& path, const std::string& data, int perm = 0644) {
        return add(path, AE_IFREG, perm, data, nullptr, nullptr);
    }
    ZipBuilder& dir(const std::string& path) { return add(path, AE_IFDIR, 0755, "", nullptr, nullptr); }
    ZipBuilder& symlink(const std::string& path, const std::string& target) {
        return add(path, AE_IFLNK, 0777, "", target.c_str(), nullptr);
    }
    ZipBuilder& hardlink(const std::string& path, const std::string& target) {
        return add(path, AE_IFREG, 0644, "", nullptr, target.c_str());
    }

    std::string build() const {
        std::vector<char> buf(64 * 1024 * 1024);
        std::size_t used = 0;
        archive* a = archive_write_new();
        archive_write_set_format_zip(a);
        EXPECT_EQ(archive_write_open_memory(a, buf.data(), buf.size(), &used), ARCHIVE_OK);
        for (const auto& s : specs_) {
            archive_entry* e = archive_entry_new();
            archive_entry_set_pathname(e, s.path.c_str());
            archive_entry_set_filetype(e, static_cast<unsigned>(s.type));
            archive_entry_set_perm(e, static_cast<mode_t>(s.perm));
            if (!s.target.empty()) archive_entry_set_symlink(e, s.target.c_str());
            if (!s.hardlink.empty()) archive_entry_set_hardlink(e, s.hardlink.c_str());
            archive_entry_set_size(e, static_cast<la_int64_t>(s.data.size()));
            EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
            if (!s.data.empty()) {
                EXPECT_EQ(archive_write_data(a, s.data.data(), s.data.size()), static_cast<la_ssize_t>(s.data.size()));
            }
            archive_entry_free(e);
        }
        EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        return std::string(buf.data(), used);
    }

private:
    struct Spec {
        std::string path;
        int type;
        int perm;
        std::string data, target, hardlink;
    };
    ZipBuilder& add(const std::string& path, int type, int perm, const std::string& data, const char* target,
                    const char* hardlink) {
        specs_.push_back({path, type, perm, data, target ? target : "", hardlink ? hardlink : ""});
        return *this;
    }
    std::vector<Spec> specs_;
};

}  // namespace funcd::testing
