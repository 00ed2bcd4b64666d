// Every string (and bytes) field of every request of every permission-service API, fed a corpus
// of SQL injection, path traversal, control characters, oversized and unicode inputs, called
// as the platform admin through a generic stub: the service never answers INTERNAL or UNKNOWN
// (or any other server-side failure), and a refused call changes no row of any table.
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/stubs/common.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>

#include <pqxx/pqxx>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "submarine/common/v1/options.pb.h"
#include "tests/integration/permission/permission_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::permission::v1;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
constexpr char kPassword[] = "correct horse battery";

std::vector<std::string> Corpus() {
  return {
      "'; DROP TABLE users; --",
      "' OR '1'='1",
      "admin'--",
      "1; SELECT pg_sleep(5)",
      "../../etc/passwd",
      "users/../teams/x",
      "projects/default/../../users/admin",
      std::string("a\0b", 3),
      "line\nbreak\r\x1b[31m",
      "\xff\xfe invalid utf-8",
      "Ünïcødé 名前 🚀",
      "%s%n%x{}${jndi:ldap://x}",
      std::string(1 << 20, 'A'),
  };
}

// Codes a client caused (4xx): anything else is the server's failure.
bool ClientSide(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

// Paths ("user.display_name", "update_mask.paths") of every string and bytes field reachable
// from `type`, nested messages included (google.protobuf.* well-known types except FieldMask are
// skipped: they hold no strings a handler reads).
void StringFields(const Descriptor* type, const std::vector<const FieldDescriptor*>& prefix,
                  std::vector<std::vector<const FieldDescriptor*>>* out, int depth = 0) {
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    auto path = prefix;
    path.push_back(f);
    if (f->type() == FieldDescriptor::TYPE_STRING || f->type() == FieldDescriptor::TYPE_BYTES) {
      out->push_back(path);
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE && depth < 3 && !f->is_map()) {
      const std::string& full = f->message_type()->full_name();
      if (full.rfind("google.protobuf.", 0) == 0 && full != "google.protobuf.FieldMask") continue;
      StringFields(f->message_type(), path, out, depth + 1);
    }
  }
}

void SetPath(Message* msg, const std::vector<const FieldDescriptor*>& path,
             const std::string& value) {
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const auto* r = msg->GetReflection();
    msg = path[i]->is_repeated() ? r->AddMessage(msg, path[i]) : r->MutableMessage(msg, path[i]);
  }
  const auto* r = msg->GetReflection();
  if (path.back()->is_repeated()) {
    r->AddString(msg, path.back(), value);
  } else {
    r->SetString(msg, path.back(), value);
  }
}

std::string PathName(const std::vector<const FieldDescriptor*>& path) {
  std::string out;
  for (const auto* f : path) absl::StrAppend(&out, out.empty() ? "" : ".", f->name());
  return out;
}

class PermissionInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartPermission();
    ASSERT_TRUE(p.ok()) << p.status();
    perm_ = std::move(*p);
    // Something in every table the calls could touch.
    ASSERT_TRUE(perm_->CreateUser("alice", kPassword).ok());
    ASSERT_TRUE(perm_->CreateTeam("vision", "alice").ok());
    ASSERT_TRUE(perm_->CreateProject("proj", "alice").ok());
    v1::CreateGrantRequest grant;
    grant.mutable_grant()->set_resource("projects/proj/environments/e1");
    grant.mutable_grant()->set_subject("users/admin");
    grant.mutable_grant()->set_permission(v1::READ);
    v1::Grant g;
    ASSERT_TRUE(perm_->access->CreateGrant(perm_->AsUser("alice").get(), grant, &g).ok());
    v1::CreateApiTokenRequest token;
    token.set_parent("users/alice");
    v1::CreateApiTokenResponse t;
    ASSERT_TRUE(perm_->identity->CreateApiToken(perm_->AsUser("alice").get(), token, &t).ok());
    ASSERT_TRUE(perm_->Login("alice", kPassword).ok());
    db_ = std::make_unique<pqxx::connection>(TestPostgres::Get().ConnInfo(perm_->dbname));
  }

  // md5 of every row of every table of the schema, except the event plumbing (the relay
  // sequences and prunes it on its own).
  std::string Checksum() {
    pqxx::work tx(*db_);
    auto tables = tx.exec(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'permission' AND "
        "table_type = 'BASE TABLE' AND table_name NOT IN ('outbox', 'outbox_cursor', 'inbox', "
        "'consumer_offsets') ORDER BY table_name");
    std::string sum;
    for (const auto& t : tables) {
      // Table names come from the catalog, quoted; nothing here is request input.
      std::string name = "permission." + tx.quote_name(t[0].as<std::string>());
      auto r = tx.exec("SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY "
                       "x::text)), '') FROM " + name + " x");
      absl::StrAppend(&sum, t[0].as<std::string>(), ":", r[0][0].as<std::string>(), ":",
                      r[0][1].as<std::string>(), ";");
    }
    return sum;
  }

  std::unique_ptr<PermissionProcess> perm_;
  std::unique_ptr<pqxx::connection> db_;
};

TEST_F(PermissionInjectionTest, HostileStringsAreRefusedCleanlyAndChangeNothing) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  google::protobuf::DynamicMessageFactory factory(pool);
  int calls = 0, refused = 0;
  std::string before = Checksum();
  for (const char* service_name :
       {"submarine.permission.v1.IdentityService", "submarine.permission.v1.AccessService",
        "submarine.permission.v1.QuotaService", "submarine.permission.v1.CredentialService",
        "submarine.permission.v1.AuditService", "submarine.permission.v1.SubmarineAuthApi"}) {
    const auto* service = pool->FindServiceByName(service_name);
    ASSERT_NE(service, nullptr) << service_name;
    for (int m = 0; m < service->method_count(); ++m) {
      const auto* method = service->method(m);
      std::vector<std::vector<const FieldDescriptor*>> fields;
      StringFields(method->input_type(), {}, &fields);
      std::string path = absl::StrCat("/", service->full_name(), "/", method->name());
      grpc::internal::RpcMethod rpc(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC,
                                    perm_->channel);
      for (const auto& field : fields) {
        for (const auto& value : Corpus()) {
          // proto3 string fields must hold UTF-8: gRPC refuses anything else while parsing,
          // before a handler runs (and the gateway's JSON cannot carry it), so invalid UTF-8 is
          // only sent in bytes fields.
          if (field.back()->type() == FieldDescriptor::TYPE_STRING && !google::protobuf::internal::
                  IsStructurallyValidUTF8(value.data(), static_cast<int>(value.size()))) {
            continue;
          }
          std::unique_ptr<Message> req(factory.GetPrototype(method->input_type())->New());
          std::unique_ptr<Message> resp(factory.GetPrototype(method->output_type())->New());
          SetPath(req.get(), field, value);
          auto ctx = perm_->AsAdmin();
          grpc::Status st = grpc::internal::BlockingUnaryCall<Message, Message>(
              perm_->channel.get(), rpc, ctx.get(), *req, resp.get());
          ++calls;
          std::string what = absl::StrCat(method->full_name(), " ", PathName(field), " = ",
                                          value.substr(0, 40));
          if (st.ok()) {
            before = Checksum();  // a legitimate change (e.g. a display name) is the new baseline
            continue;
          }
          ++refused;
          EXPECT_TRUE(ClientSide(st.error_code()))
              << what << ": " << st.error_code() << " " << st.error_message();
          EXPECT_LT(st.error_message().size(), 2048u) << what << ": the error echoes the input";
          std::string after = Checksum();
          EXPECT_EQ(after, before) << what << " was refused but changed the database";
          before = after;
        }
      }
    }
  }
  std::printf("%d calls, %d refused\n", calls, refused);
  // Sanity: the walk reached the APIs (every service has string fields).
  EXPECT_GT(calls, 500);
  EXPECT_GT(refused, calls / 2);
}

}  // namespace
}  // namespace submarine::testing
