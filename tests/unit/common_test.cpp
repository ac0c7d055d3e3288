#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "funcd/common/base64.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/time_format.hpp"

using namespace funcd;
using namespace std::chrono;

TEST(Ids, UuidIsCanonicalVersion4) {
    const std::regex shape("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
    for (int i = 0; i < 200; ++i) {
        const auto id = new_uuid();
        EXPECT_TRUE(std::regex_match(id, shape)) << id;
    }
}

TEST(Ids, UuidsAreUnique) {
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) seen.insert(new_uuid());
    EXPECT_EQ(seen.size(), 10000u);
}

TEST(Ids, ForkedChildDoesNotRepeatItsParentsIds) {
    new_uuid();  // the parent now has random bytes buffered
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const std::string id = new_uuid();
        const bool ok = ::write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size());
        ::_exit(ok ? 0 : 1);
    }
    ::close(fds[1]);
    std::string from_child(36, '\0');
    EXPECT_EQ(::read(fds[0], from_child.data(), from_child.size()), 36);
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_NE(from_child, new_uuid());
}

TEST(Ids, RandomHexHasTwoDigitsPerByte) {
    EXPECT_EQ(random_hex(0), "");
    const auto h = random_hex(16);
    EXPECT_TRUE(std::regex_match(h, std::regex("^[0-9a-f]{32}$"))) << h;
    EXPECT_NE(random_hex(16), h);
}

TEST(Ids, Sha256KnownVectors) {
    // FIPS 180-2 appendix B.1 and the empty-string digest.
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Base64, EncodesRfc4648Vectors) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, RoundTripsAllByteValues) {
    std::string data;
    for (int i = 0; i < 256 * 3 + 1; ++i) data.push_back(static_cast<char>(i * 7));
    for (std::size_t len = 0; len < 10; ++len) {
        const auto d = base64_decode(base64_encode(data.substr(0, len)));
        ASSERT_TRUE(d);
        EXPECT_EQ(*d, data.substr(0, len));
    }
    EXPECT_EQ(base64_decode(base64_encode(data)), data);
}

TEST(Base64, IgnoresWhitespace) {
    EXPECT_EQ(base64_decode("Zm9v\nYmFy\r\n"), "foobar");
    EXPECT_EQ(base64_decode(" Zm9vYg = = "), "foob");
    EXPECT_EQ(base64_decode(""), "");
}

TEST(Base64, RejectsMalformedInput) {
    EXPECT_FALSE(base64_decode("Zm9v!"));        // outside the alphabet
    EXPECT_FALSE(base64_decode("Zm9vYg"));       // missing padding
    EXPECT_FALSE(base64_decode("Zm9vYg="));      // short padding
    EXPECT_FALSE(base64_decode("Zm9vYg==="));    // too much padding
    EXPECT_FALSE(base64_decode("Zg==Zg=="));     // data after padding
    EXPECT_FALSE(base64_decode("Z==="));         // one sextet cannot make a byte
    EXPECT_FALSE(base64_decode("===="));
    EXPECT_FALSE(base64_decode("Zm9"));          // truncated
    EXPECT_FALSE(base64_decode("Zh=="));         // non-zero bits after the last byte
    EXPECT_FALSE(base64_decode("Zm9vYmF-"));     // base64url alphabet is not accepted
    EXPECT_FALSE(base64_decode(std::string("Zm9v\0YmFy", 9)));
}

TEST(Rfc3339, FormatsUtcWithMilliseconds) {
    const auto t = sys_days{2026y / November / 26} + 23h + 40min + 18s + 123456us;
    EXPECT_EQ(format_rfc3339(t), "2026-11-26T23:40:18.123Z");
    EXPECT_EQ(format_rfc3339(SystemTime{}), "1970-01-01T00:00:00.000Z");
    // Before the epoch the millisecond still rounds down, not toward zero.
    EXPECT_EQ(format_rfc3339(SystemTime{} - 1ms), "1969-12-31T23:59:59.999Z");
}

TEST(Rfc3339, ParsesZuluOffsetsAndFractions) {
    const auto base = sys_days{2026y / November / 26} + 10h;
    EXPECT_EQ(parse_rfc3339("2026-11-26T10:00:00Z"), base);
    EXPECT_EQ(parse_rfc3339("2026-11-26t10:00:00z"), base);
    EXPECT_EQ(parse_rfc3339("2026-11-26T10:00:00.5+02:00"), base - 2h + 500ms);
    EXPECT_EQ(parse_rfc3339("2026-11-26T10:00:00-05:30"), base + 5h + 30min);
    EXPECT_EQ(parse_rfc3339("2026-11-26T10:00:00.123456789Z"), base + 123456789ns);
    EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00Z"), SystemTime{sys_days{2024y / February / 29}});
}

TEST(Rfc3339, FormatThenParseRoundTrips) {
    const auto t = time_point_cast<milliseconds>(system_clock::now());
    EXPECT_EQ(parse_rfc3339(format_rfc3339(t)), t);
}

TEST(Rfc3339, RejectsMalformedText) {
    for (const char* bad : {"", "2026-11-26", "2026-11-26 10:00:00Z", "2026-11-26T10:00:00", "2026-11-26T10:00Z",
                            "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
                            "2026-11-26T24:00:00Z", "2026-11-26T10:60:00Z", "2026-11-26T10:00:60Z",
                            "2026-11-26T10:00:00.Z", "2026-11-26T10:00:00+0200", "2026-11-26T10:00:00+24:00",
                            "2026-11-26T10:00:00Zjunk", "26-11-26T10:00:00Z", "2026-1-26T10:00:00Z",
                            "2026-11-26T10:00:00UTC", " 2026-11-26T10:00:00Z"}) {
        EXPECT_FALSE(parse_rfc3339(bad)) << bad;
    }
}
