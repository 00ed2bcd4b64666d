#include "common/rpc/call_context.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/server_interceptor.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <typeinfo>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/metrics.h"
#include "common/status/status.h"
#include "common/util/clock.h"
#include "submarine/common/v1/options.pb.h"

namespace submarine::rpc {
namespace {

using submarine::common::v1::Principal;

std::mutex codec_mu;
std::shared_ptr<const auth::PrincipalCodec> codec;  // guarded by codec_mu
std::atomic<bool> anonymous_allowed{false};

std::string Find(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                 const std::string& key) {
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// The descriptor of "/package.Service/Method", or nullptr.
const google::protobuf::MethodDescriptor* MethodOf(const std::string& method) {
  if (method.size() < 4 || method[0] != '/') return nullptr;
  std::string dotted = method.substr(1);
  auto slash = dotted.find('/');
  if (slash == std::string::npos) return nullptr;
  dotted[slash] = '.';
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(dotted);
}

absl::Status Unauthenticated(const std::string& message) {
  return MakeError(absl::StatusCode::kUnauthenticated, "UNAUTHENTICATED", message);
}

// Calls in flight on this process' servers, by server context: what the interceptor decided.
class AdmissionTable {
 public:
  void Put(const grpc::ServerContextBase* ctx, std::shared_ptr<const Admission> admission) {
    std::lock_guard lock(mu_);
    calls_[ctx] = std::move(admission);
  }
  void Erase(const grpc::ServerContextBase* ctx) {
    std::lock_guard lock(mu_);
    calls_.erase(ctx);
  }
  std::shared_ptr<const Admission> Get(const grpc::ServerContextBase* ctx) {
    std::lock_guard lock(mu_);
    auto it = calls_.find(ctx);
    return it == calls_.end() ? nullptr : it->second;
  }

 private:
  std::mutex mu_;
  std::unordered_map<const grpc::ServerContextBase*, std::shared_ptr<const Admission>> calls_;
};

AdmissionTable& Table() {
  static auto* table = new AdmissionTable();
  return *table;
}

// Admission, request-id echo, access log and metrics for every call.
class CallInterceptor : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(grpc::experimental::ServerRpcInfo* info, bool enforce)
      : info_(info),
        method_(info->method()),
        enforce_(enforce),
        start_(std::chrono::steady_clock::now()) {}
  ~CallInterceptor() override {
    if (admitted_) Table().Erase(info_->server_context());
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      auto* ctx = info_->server_context();
      auto admission =
          std::make_shared<Admission>(Admit(method_, *methods->GetRecvInitialMetadata(),
                                            ctx->deadline(), std::chrono::system_clock::now()));
      if (!enforce_) admission->status = absl::OkStatus();
      request_id_ = admission->call.request_id;
      refusal_ = admission->status;
      Table().Put(ctx, std::move(admission));
      admitted_ = true;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA) &&
        !request_id_.empty()) {
      methods->GetSendInitialMetadata()->emplace(kRequestIdHeader, request_id_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status st = methods->GetSendStatus();
      if (!refusal_.ok() && st.ok()) {
        log::ScopedRequestId bind(request_id_);
        log::Get("rpc")->error("{} answered OK to a call refused by admission; sending the refusal",
                               method_);
        st = ToGrpcStatus(refusal_, "rpc.submarine.io");
        methods->ModifySendStatus(st);
      }
      Observe(st);
    }
    methods->Proceed();
  }

 private:
  void Observe(const grpc::Status& st) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    auto& reg = metrics::Registry::Global();
    std::string labels =
        absl::StrCat("method=\"", method_, "\",code=\"", CodeName(st.error_code()), "\"");
    reg.GetCounter("grpc_server_handled_total", "RPCs completed by method and code", labels)->Inc();
    reg.GetHistogram("grpc_server_handling_seconds", "RPC latency by method",
                     absl::StrCat("method=\"", method_, "\""))
        ->Observe(secs);
    log::ScopedRequestId bind(request_id_);
    auto logger = log::Get("access");
    if (st.ok()) {
      logger->debug("{} OK {:.3f}ms", method_, secs * 1e3);
    } else {
      logger->info("{} {} {:.3f}ms: {}", method_, CodeName(st.error_code()), secs * 1e3,
                   st.error_message());
    }
  }

  grpc::experimental::ServerRpcInfo* info_;
  std::string method_;
  bool enforce_;
  bool admitted_ = false;
  std::string request_id_;
  absl::Status refusal_;
  std::chrono::steady_clock::time_point start_;
};

class CallInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallInterceptorFactory(bool enforce) : enforce_(enforce) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(info, enforce_);
  }

 private:
  bool enforce_;
};

}  // namespace

CallInfo CallInfo::System(const std::string& service, std::string request_id) {
  CallInfo call;
  call.request_id = request_id.empty() ? IdGenerator::Secure().Uuid() : std::move(request_id);
  call.principal = auth::ServicePrincipal(service);
  call.subject = auth::SubjectOf(call.principal);
  return call;
}

bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == ':';
  });
}

std::string Metadata(const grpc::ServerContextBase& ctx, const std::string& key) {
  return Find(ctx.client_metadata(), key);
}

void SetPrincipalCodec(std::shared_ptr<const auth::PrincipalCodec> c) {
  std::lock_guard lock(codec_mu);
  codec = std::move(c);
}

std::shared_ptr<const auth::PrincipalCodec> GetPrincipalCodec() {
  std::lock_guard lock(codec_mu);
  return codec;
}

void SetAnonymousCallsAllowed(bool allowed) { anonymous_allowed = allowed; }

Admission Admit(const std::string& method,
                const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                std::chrono::system_clock::time_point deadline,
                std::chrono::system_clock::time_point now) {
  Admission a;
  a.call.method = method;
  a.call.deadline = deadline;
  const std::string sent_id = Find(metadata, kRequestIdHeader);
  a.call.request_id = AcceptableRequestId(sent_id) ? sent_id : IdGenerator::Secure().Uuid();

  const std::string encoded = Find(metadata, kPrincipalHeader);
  const std::string mac = Find(metadata, kPrincipalMacHeader);
  if (!encoded.empty() || !mac.empty()) {
    auto c = GetPrincipalCodec();
    if (c == nullptr) {
      a.status = MakeError(absl::StatusCode::kUnauthenticated, "PRINCIPAL_MAC_INVALID",
                           "this service has no internal secret to verify the caller");
      return a;
    }
    // The MAC covers the request id as the caller sent it.
    auto verified = c->Verify(encoded, mac, sent_id, method, now);
    if (!verified.ok()) {
      a.status = verified.status();
      return a;
    }
    a.call.principal = *std::move(verified);
    a.call.subject = auth::SubjectOf(a.call.principal);
  }

  const auto* descriptor = MethodOf(method);
  if (descriptor == nullptr ||
      !absl::StartsWith(descriptor->service()->full_name(), "submarine.")) {
    return a;  // health, reflection
  }
  const auto& options = descriptor->options();
  if (options.GetExtension(submarine::common::v1::internal_only)) {
    if (a.call.anonymous()) {
      if (!anonymous_allowed.load()) {
        a.status = Unauthenticated("this internal method needs a service's identity");
      }
    } else if (!a.call.is_service()) {
      a.status = MakeError(absl::StatusCode::kPermissionDenied, "INTERNAL_ONLY",
                           absl::StrCat(method, " is internal to Submarine's services"),
                           {{"method", method}});
    }
    return a;
  }
  if (a.call.anonymous() && !options.GetExtension(submarine::common::v1::auth_exempt) &&
      !anonymous_allowed.load()) {
    a.status = Unauthenticated("this call needs an authenticated caller");
  }
  return a;
}

void InstallCallInterceptor(grpc::ServerBuilder& builder, bool enforce) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<CallInterceptorFactory>(enforce));
  builder.experimental().SetInterceptorCreators(std::move(factories));
}

std::shared_ptr<const Admission> AdmissionOf(const grpc::ServerContextBase& ctx) {
  return Table().Get(&ctx);
}

absl::Status EscapedException(const std::exception& e) {
  log::Get("rpc")->error("a handler threw {}; answering INTERNAL", typeid(e).name());
  return Internal("unexpected error handling the call");
}

absl::Status NoAdmission() {
  log::Get("rpc")->error(
      "a call reached a handler on a server built without the call "
      "interceptor; refusing it (use rpc::InstallCallInterceptor)");
  return Internal("this server cannot admit calls");
}

}  // namespace submarine::rpc
