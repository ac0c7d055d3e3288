#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/triggers/route_table.hpp"

using namespace funcd;
using json = nlohmann::json;

namespace {

// Runs `f`, which must throw ApiError with `status` and a message containing every needle.
template <class F>
void expect_api_error(F&& f, int status, std::initializer_list<std::string> needles) {
    try {
        f();
        ADD_FAILURE() << "no ApiError";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), status) << e.what();
        for (const auto& needle : needles)
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
                << "message '" << e.what() << "' does not mention '" << needle << "'";
    }
}

// The function a request reaches, or "" when none.
std::string target(const RouteTable& t, std::string_view method, std::string_view path) {
    const auto m = t.match(method, path);
    return m ? m->route->function : "";
}

std::map<std::string, std::string> params(const RouteTable& t, std::string_view method, std::string_view path) {
    const auto m = t.match(method, path);
    EXPECT_TRUE(m) << method << " " << path;
    return m ? m->path_parameters : std::map<std::string, std::string>{};
}

}  // namespace

TEST(RouteTable, AwsDocumentationExample) {
    // The example routes and requests of "Create routes for HTTP APIs": routing API requests.
    const RouteTable t = RouteTable::build({{"GET", "/pets/dog/1", "static"},
                                            {"GET", "/pets/dog/{id}", "dog"},
                                            {"GET", "/pets/{proxy+}", "pets"},
                                            {"ANY", "/{proxy+}", "catchall"}});
    EXPECT_EQ(target(t, "GET", "/pets/dog/1"), "static");
    EXPECT_EQ(target(t, "GET", "/pets/dog/2"), "dog");
    EXPECT_EQ(params(t, "GET", "/pets/dog/2"), (std::map<std::string, std::string>{{"id", "2"}}));
    EXPECT_EQ(target(t, "GET", "/pets/cat/1"), "pets");
    EXPECT_EQ(params(t, "GET", "/pets/cat/1"), (std::map<std::string, std::string>{{"proxy", "cat/1"}}));
    EXPECT_EQ(target(t, "POST", "/test/5"), "catchall");
    EXPECT_EQ(target(t, "POST", "/pets/dog/1"), "catchall");
}

TEST(RouteTable, LiteralBeatsParamBeatsGreedy) {
    const RouteTable t = RouteTable::build(
        {{"GET", "/a/{proxy+}", "greedy"}, {"GET", "/a/{x}", "param"}, {"GET", "/a/b", "literal"}});
    EXPECT_EQ(target(t, "GET", "/a/b"), "literal");
    EXPECT_EQ(target(t, "GET", "/a/c"), "param");
    EXPECT_EQ(target(t, "GET", "/a/c/d"), "greedy");
}

TEST(RouteTable, FullMatchBeatsGreedyWhateverTheLiterals) {
    // "Full match for a route and method" comes before "a greedy path variable".
    const RouteTable t = RouteTable::build({{"GET", "/a/{proxy+}", "greedy"}, {"GET", "/{x}/{y}", "params"}});
    EXPECT_EQ(target(t, "GET", "/a/b"), "params");
    EXPECT_EQ(target(t, "GET", "/a/b/c"), "greedy");
}

TEST(RouteTable, LongerLiteralPrefixWins) {
    const RouteTable t = RouteTable::build({{"GET", "/a/{x}/c", "late-literal"},
                                            {"GET", "/a/b/{y}", "early-literal"},
                                            {"ANY", "/{proxy+}", "root"},
                                            {"ANY", "/a/{proxy+}", "a"},
                                            {"ANY", "/a/b/{proxy+}", "ab"}});
    EXPECT_EQ(target(t, "GET", "/a/b/c"), "early-literal");
    EXPECT_EQ(target(t, "GET", "/a/z/c"), "late-literal");
    EXPECT_EQ(target(t, "GET", "/a/b/c/d"), "ab");
    EXPECT_EQ(target(t, "GET", "/a/z/c/d"), "a");
    EXPECT_EQ(target(t, "GET", "/z/b/c/d"), "root");
}

TEST(RouteTable, MethodBeatsAnyForTheSamePath) {
    const RouteTable t = RouteTable::build({{"ANY", "/items/{id}", "any"}, {"GET", "/items/{id}", "get"}});
    EXPECT_EQ(target(t, "GET", "/items/1"), "get");
    EXPECT_EQ(target(t, "POST", "/items/1"), "any");
    EXPECT_EQ(target(t, "DELETE", "/items/1"), "any");
}

TEST(RouteTable, PathSpecificityComesBeforeTheMethod) {
    const RouteTable t = RouteTable::build({{"GET", "/a/{x}", "get-param"}, {"ANY", "/a/b", "any-literal"}});
    EXPECT_EQ(target(t, "GET", "/a/b"), "any-literal");
    EXPECT_EQ(target(t, "GET", "/a/c"), "get-param");
}

TEST(RouteTable, MethodsMatchExactly) {
    const RouteTable t = RouteTable::build({{"GET", "/r", "get"}});
    EXPECT_EQ(target(t, "GET", "/r"), "get");
    EXPECT_EQ(target(t, "HEAD", "/r"), "") << "HEAD is its own method on HTTP APIs";
    EXPECT_EQ(target(t, "get", "/r"), "") << "methods are case-sensitive";
    EXPECT_EQ(target(t, "POST", "/r"), "");
}

TEST(RouteTable, GreedyVariableTakesTheNonEmptyRest) {
    const RouteTable t = RouteTable::build({{"GET", "/files/{path+}", "files"}});
    EXPECT_EQ(params(t, "GET", "/files/a"), (std::map<std::string, std::string>{{"path", "a"}}));
    EXPECT_EQ(params(t, "GET", "/files/a/b/c.txt"), (std::map<std::string, std::string>{{"path", "a/b/c.txt"}}));
    EXPECT_EQ(params(t, "GET", "/files/dir/"), (std::map<std::string, std::string>{{"path", "dir/"}}));
    EXPECT_EQ(target(t, "GET", "/files"), "");
    EXPECT_EQ(target(t, "GET", "/files/"), "");
    EXPECT_EQ(target(t, "GET", "/other/a"), "");
}

TEST(RouteTable, ParamMatchesOneNonEmptySegment) {
    const RouteTable t = RouteTable::build({{"GET", "/users/{id}", "user"}});
    EXPECT_EQ(target(t, "GET", "/users/7"), "user");
    EXPECT_EQ(target(t, "GET", "/users/"), "");
    EXPECT_EQ(target(t, "GET", "/users"), "");
    EXPECT_EQ(target(t, "GET", "/users/7/8"), "");
    EXPECT_EQ(target(t, "GET", "/users/7/"), "") << "a trailing slash is another path";
}

TEST(RouteTable, SeveralParameters) {
    const RouteTable t = RouteTable::build({{"GET", "/orgs/{org}/repos/{repo.name}/{rest+}", "repo"}});
    EXPECT_EQ(params(t, "GET", "/orgs/acme/repos/site/blob/main/README.md"),
              (std::map<std::string, std::string>{{"org", "acme"}, {"repo.name", "site"}, {"rest", "blob/main/README.md"}}));
}

TEST(RouteTable, ParameterValuesAreDecodedOnce) {
    const RouteTable t = RouteTable::build({{"GET", "/users/{id}", "user"}, {"GET", "/files/{path+}", "files"}});
    EXPECT_EQ(params(t, "GET", "/users/a%20b"), (std::map<std::string, std::string>{{"id", "a b"}}));
    EXPECT_EQ(params(t, "GET", "/users/a+b"), (std::map<std::string, std::string>{{"id", "a+b"}}))
        << "'+' is a space only in queries";
    EXPECT_EQ(params(t, "GET", "/users/%2541"), (std::map<std::string, std::string>{{"id", "%41"}}));
    EXPECT_EQ(params(t, "GET", "/users/caf%C3%A9"), (std::map<std::string, std::string>{{"id", "café"}}));
    // An encoded slash stays inside its segment for matching, then decodes like any byte.
    EXPECT_EQ(params(t, "GET", "/users/a%2Fb"), (std::map<std::string, std::string>{{"id", "a/b"}}));
    EXPECT_EQ(params(t, "GET", "/files/a%20b/c%2Fd"), (std::map<std::string, std::string>{{"path", "a b/c/d"}}));
}

TEST(RouteTable, LiteralsCompareWithTheDecodedSegment) {
    const RouteTable t = RouteTable::build({{"GET", "/caf", "caf"}, {"GET", "/a:b@c", "punct"}});
    EXPECT_EQ(target(t, "GET", "/c%61f"), "caf");
    EXPECT_EQ(target(t, "GET", "/a%3Ab%40c"), "punct");
    EXPECT_EQ(target(t, "GET", "/CAF"), "") << "literals are case-sensitive";
}

TEST(RouteTable, MalformedEscapesMatchNothing) {
    const RouteTable t = RouteTable::build({{"ANY", "/{proxy+}", "all"}});
    EXPECT_EQ(target(t, "GET", "/a%2"), "");
    EXPECT_EQ(target(t, "GET", "/a/%zz/b"), "");
    EXPECT_EQ(target(t, "GET", "/ok%20"), "all");
}

TEST(RouteTable, RootRouteAndPathsWithoutSlash) {
    const RouteTable t = RouteTable::build({{"GET", "/", "root"}, {"GET", "/{proxy+}", "rest"}});
    EXPECT_EQ(target(t, "GET", "/"), "root");
    EXPECT_EQ(target(t, "GET", "/x"), "rest");
    EXPECT_EQ(target(t, "GET", ""), "");
    EXPECT_EQ(target(t, "GET", "x"), "");
    const RouteTable only_greedy = RouteTable::build({{"GET", "/{proxy+}", "rest"}});
    EXPECT_EQ(target(only_greedy, "GET", "/"), "") << "a greedy variable needs a child resource";
}

TEST(RouteTable, EmptyTableMatchesNothing) {
    const RouteTable t = RouteTable::build({});
    EXPECT_FALSE(t.match("GET", "/"));
    EXPECT_TRUE(t.routes().empty());
    EXPECT_FALSE(RouteTable().match("GET", "/a"));
}

TEST(RouteTable, MatchPointsIntoTheTable) {
    const RouteTable t = RouteTable::build({{"GET", "/a", "fa"}, {"POST", "/a", "fb"}});
    const auto m = t.match("POST", "/a");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->route, &t.routes()[1]);
    EXPECT_TRUE(m->path_parameters.empty());
}

TEST(RouteTable, SameShapeRoutesConflictNamingBoth) {
    expect_api_error([] { RouteTable::build({{"GET", "/a/{x}", "f1"}, {"GET", "/a/{y}", "f2"}}); }, 409,
                     {"GET /a/{x}", "GET /a/{y}"});
    expect_api_error([] { RouteTable::build({{"ANY", "/f/{p+}", "f1"}, {"GET", "/", "f0"}, {"ANY", "/f/{q+}", "f2"}}); },
                     409, {"ANY /f/{p+}", "ANY /f/{q+}"});
    expect_api_error([] { RouteTable::build({{"POST", "/same", "f1"}, {"POST", "/same", "f1"}}); }, 409,
                     {"POST /same"});
    try {
        RouteTable::build({{"GET", "/a/{x}/b", "f1"}, {"GET", "/a/{y}/b", "f2"}});
        ADD_FAILURE() << "no conflict";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.type(), "ResourceConflictException");
    }
}

TEST(RouteTable, DifferentShapesOrMethodsDoNotConflict) {
    EXPECT_NO_THROW(RouteTable::build({{"GET", "/a", "f"},
                                       {"ANY", "/a", "f"},
                                       {"POST", "/a", "f"},
                                       {"GET", "/a/{x}", "f"},
                                       {"GET", "/a/b", "f"},
                                       {"GET", "/a/{x+}", "f"},
                                       {"GET", "/{x}/b", "f"},
                                       {"GET", "/", "f"}}));
}

TEST(RouteTable, ValidationErrorsNameTheRoute) {
    const std::vector<std::pair<Route, std::string>> cases = {
        {{"FETCH", "/a", "f"}, "method"},
        {{"get", "/a", "f"}, "method"},
        {{"", "/a", "f"}, "method"},
        {{"GET", "a", "f"}, "start with '/'"},
        {{"GET", "", "f"}, "start with '/'"},
        {{"GET", "/a//b", "f"}, "empty segment"},
        {{"GET", "/a/", "f"}, "empty segment"},
        {{"GET", "/{proxy+}/a", "f"}, "last segment"},
        {{"GET", "/{a+}/{b+}", "f"}, "last segment"},
        {{"GET", "/{x}/{x}", "f"}, "used twice"},
        {{"GET", "/{x}/{x+}", "f"}, "used twice"},
        {{"GET", "/{}", "f"}, "{}"},
        {{"GET", "/{+}", "f"}, "{+}"},
        {{"GET", "/{a", "f"}, "{a"},
        {{"GET", "/{a}b", "f"}, "{a}b"},
        {{"GET", "/a{b}", "f"}, "a{b}"},
        {{"GET", "/a}", "f"}, "a}"},
        {{"GET", "/{a b}", "f"}, "{a b}"},
        {{"GET", "/{a/b}", "f"}, "segment"},
        {{"GET", "/a%20b", "f"}, "percent"},
        {{"GET", "/a b", "f"}, "a b"},
        {{"GET", "/a?b", "f"}, "a?b"},
        {{"GET", "/ok", "bad name!"}, "function name"},
        {{"GET", "/ok", ""}, "function name"},
    };
    for (const auto& [route, needle] : cases) {
        const std::string name = route.method + " " + route.path;
        expect_api_error([&] { RouteTable::build({{"GET", "/fine", "f"}, route}); }, 400, {"'" + name + "'", needle});
    }
}

TEST(RouteTable, JsonRoundTrip) {
    const json body = json::parse(R"([
        {"method": "GET", "path": "/users/{id}", "function": "get-user"},
        {"method": "ANY", "path": "/static/{proxy+}", "function": "assets"},
        {"method": "POST", "path": "/", "function": "root_post"}
    ])");
    const RouteTable t = RouteTable::from_json(body);
    EXPECT_EQ(t.to_json(), body);
    ASSERT_EQ(t.routes().size(), 3u);
    EXPECT_EQ(t.routes()[1].function, "assets");
    EXPECT_EQ(target(t, "GET", "/users/9"), "get-user");
    EXPECT_EQ(RouteTable::from_json(json::array()).to_json(), json::array());
}

TEST(RouteTable, JsonShapeErrors) {
    expect_api_error([] { RouteTable::from_json(json::object()); }, 400, {"array"});
    try {
        RouteTable::from_json(json("GET /a"));
        ADD_FAILURE();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.type(), "InvalidRequestContentException");
    }
    expect_api_error([] { RouteTable::from_json(json::parse(R"([1])")); }, 400, {"routes[0]", "object"});
    expect_api_error([] { RouteTable::from_json(json::parse(R"([{"method": "GET", "path": "/a"}])")); }, 400,
                     {"routes[0].function", "required"});
    expect_api_error(
        [] { RouteTable::from_json(json::parse(R"([{"method": "GET", "path": "/a", "function": "f"},
                                                   {"method": 1, "path": "/b", "function": "f"}])")); },
        400, {"routes[1].method", "string"});
    expect_api_error(
        [] { RouteTable::from_json(json::parse(R"([{"method": "GET", "path": "/a", "function": "f", "auth": "x"}])")); },
        400, {"routes[0]", "unknown field 'auth'"});
    expect_api_error(
        [] { RouteTable::from_json(json::parse(R"([{"method": "GET", "path": "/a/{x}", "function": "f"},
                                                   {"method": "GET", "path": "/a/{y}", "function": "g"}])")); },
        409, {"GET /a/{x}", "GET /a/{y}"});
}
