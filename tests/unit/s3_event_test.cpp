#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "funcd/common/ids.hpp"
#include "funcd/common/time_format.hpp"
#include "funcd/triggers/s3_event.hpp"

namespace funcd {
namespace {

using namespace std::chrono;
namespace fs = std::filesystem;

// Whether `s` is exactly `digits` upper-case hex digits.
bool upper_hex(const std::string& s, std::size_t digits) {
    return s.size() == digits &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); });
}

FileEvent sample_file_event() {
    FileEvent e;
    e.directory = "/srv/uploads";
    e.key = "images/red flower.jpg";
    e.size = 1024;
    e.time = *parse_rfc3339("2026-11-26T23:40:18.123456Z");
    return e;
}

TEST(S3Event, RecordHasTheShapeLambdaReceivesFromS3) {
    const auto event = make_s3_event(sample_file_event(), "thumbnails", "0123456789abcdef0123456789abcdef", "eu-west-1");
    ASSERT_TRUE(event.contains("Records"));
    ASSERT_EQ(event["Records"].size(), 1u);
    const auto& r = event["Records"][0];
    EXPECT_EQ(r["eventVersion"], "2.1");
    EXPECT_EQ(r["eventSource"], "aws:s3");
    EXPECT_EQ(r["awsRegion"], "eu-west-1");
    EXPECT_EQ(r["eventTime"], "2026-11-26T23:40:18.123Z");
    EXPECT_EQ(r["eventName"], "ObjectCreated:Put");
    EXPECT_TRUE(r["userIdentity"]["principalId"].is_string());
    EXPECT_EQ(r["requestParameters"]["sourceIPAddress"], "127.0.0.1");
    EXPECT_TRUE(upper_hex(r["responseElements"]["x-amz-request-id"].get<std::string>(), 16));
    EXPECT_TRUE(r["responseElements"]["x-amz-id-2"].is_string());

    const auto& s3 = r["s3"];
    EXPECT_EQ(s3["s3SchemaVersion"], "1.0");
    EXPECT_EQ(s3["configurationId"], "thumbnails");
    EXPECT_EQ(s3["bucket"]["name"], "uploads");
    EXPECT_EQ(s3["bucket"]["arn"], "arn:aws:s3:::uploads");
    EXPECT_TRUE(s3["bucket"]["ownerIdentity"]["principalId"].is_string());
    EXPECT_EQ(s3["object"]["key"], "images/red+flower.jpg");
    EXPECT_TRUE(s3["object"]["size"].is_number_unsigned());
    EXPECT_EQ(s3["object"]["size"], 1024);
    EXPECT_EQ(s3["object"]["eTag"], "0123456789abcdef0123456789abcdef");
    EXPECT_TRUE(upper_hex(s3["object"]["sequencer"].get<std::string>(), 18));
    EXPECT_FALSE(s3["object"].contains("versionId"));  // an unversioned bucket has none
}

TEST(S3Event, DefaultRegionIsUsEast1) {
    EXPECT_EQ(make_s3_event(sample_file_event(), "t", "e")["Records"][0]["awsRegion"], "us-east-1");
}

TEST(S3Event, KeyIsFormUrlEncodedLikeS3) {
    EXPECT_EQ(s3_encode_key("red flower.jpg"), "red+flower.jpg");
    EXPECT_EQ(s3_encode_key("a/b/c.jpg"), "a/b/c.jpg");
    EXPECT_EQ(s3_encode_key("test_file(3).png"), "test_file%283%29.png");
    EXPECT_EQ(s3_encode_key("1+1=2&x?.txt"), "1%2B1%3D2%26x%3F.txt");
    EXPECT_EQ(s3_encode_key("caf\xC3\xA9.jpg"), "caf%C3%A9.jpg");
    EXPECT_EQ(s3_encode_key("100%.jpg"), "100%25.jpg");
    EXPECT_EQ(s3_encode_key("a-b_c.d*e~f"), "a-b_c.d*e%7Ef");
}

TEST(S3Event, BucketIsTheDirectoryName) {
    EXPECT_EQ(s3_bucket_name("/srv/uploads"), "uploads");
    EXPECT_EQ(s3_bucket_name("/srv/uploads/"), "uploads");
    EXPECT_EQ(s3_bucket_name("/srv/./uploads/../photos"), "photos");
    EXPECT_EQ(s3_bucket_name("/"), "root");
    EXPECT_EQ(s3_bucket_name("/srv/fotos-caf\xC3\xA9"), "fotos-caf\xC3\xA9");  // valid UTF-8 stays
}

TEST(S3Event, SequencerIsFixedWidthAndOrdersAsText) {
    const auto t = *parse_rfc3339("2026-11-26T23:40:18.123456789Z");
    const auto a = s3_sequencer(t);
    const auto b = s3_sequencer(t + nanoseconds(1));
    const auto c = s3_sequencer(t + hours(24 * 365 * 50));
    EXPECT_TRUE(upper_hex(a, 18)) << a;
    EXPECT_TRUE(upper_hex(c, 18)) << c;
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_EQ(s3_sequencer(system_clock::time_point{}), std::string(18, '0'));
}

TEST(S3Event, NamesThatAreNotUtf8StillSerialise) {
    FileEvent e = sample_file_event();
    e.directory = "/srv/\xFFweird";
    e.key = "bad\xFEname.jpg";
    const auto event = make_s3_event(e, "t\xC0", "etag");
    const auto& s3 = event["Records"][0]["s3"];
    EXPECT_EQ(s3["object"]["key"], "bad%FEname.jpg");
    EXPECT_EQ(s3["bucket"]["name"], "%FFweird");
    EXPECT_EQ(s3["configurationId"], "t%C0");
    EXPECT_NO_THROW((void)event.dump());
}

class S3EventFileEtag : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("funcd-etag-" + random_hex(6));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path write(const std::string& name, const std::string& content) {
        const auto p = dir_ / name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
    fs::path dir_;
};

TEST_F(S3EventFileEtag, MatchesKnownMd5Digests) {
    // RFC 1321 appendix A.5 test suite.
    EXPECT_EQ(file_etag(write("empty", "")), "d41d8cd98f00b204e9800998ecf8427e");
    EXPECT_EQ(file_etag(write("abc", "abc")), "900150983cd24fb0d6963f7d28e17f72");
    EXPECT_EQ(file_etag(write("alphabet", "abcdefghijklmnopqrstuvwxyz")), "c3fcd3d76192e4007dfb496cca67e13b");
    // A million 'a's spans several read chunks.
    EXPECT_EQ(file_etag(write("million", std::string(1'000'000, 'a'))), "7707d6ae4e027c70eea2a935c2296f21");
}

TEST_F(S3EventFileEtag, MissingFileThrowsWithPath) {
    try {
        (void)file_etag(dir_ / "missing");
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find((dir_ / "missing").string()), std::string::npos) << e.what();
    }
}

TEST_F(S3EventFileEtag, DirectoryThrows) {
    EXPECT_THROW((void)file_etag(dir_), std::system_error);
}

}  // namespace
}  // namespace funcd
