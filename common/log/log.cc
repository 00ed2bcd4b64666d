#include "common/log/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "common/util/text.h"

namespace submarine::log {
namespace {

thread_local std::string t_request_id;

std::mutex g_mu;
std::vector<spdlog::sink_ptr> g_sinks;
spdlog::level::level_enum g_level = spdlog::level::info;
bool g_json = false;
std::string g_process = "submarine";

// JSON string content: quotes, backslashes and control characters escaped, bytes that are not
// well-formed UTF-8 replaced by U+FFFD (a log line is always valid JSON).
void AppendJsonEscaped(std::string_view in, spdlog::memory_buf_t& out) {
  for (size_t i = 0; i < in.size();) {
    size_t n = text::Utf8SequenceLength(in, i);
    if (n == 0) {
      out.append(std::string_view("\xEF\xBF\xBD"));
      ++i;
      continue;
    }
    char c = in[i];
    if (n > 1) {
      out.append(in.substr(i, n));
    } else if (c == '"') {
      out.append(std::string_view("\\\""));
    } else if (c == '\\') {
      out.append(std::string_view("\\\\"));
    } else if (c == '\n') {
      out.append(std::string_view("\\n"));
    } else if (c == '\r') {
      out.append(std::string_view("\\r"));
    } else if (c == '\t') {
      out.append(std::string_view("\\t"));
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
      out.append(std::string_view(buf));
    } else {
      out.push_back(c);
    }
    i += n;
  }
}

// %& : the message with control characters escaped and malformed UTF-8 replaced, so nothing a
// caller sends (a label key with a newline, a NUL) can forge or break a line of a text log.
class TextMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    text::AppendEscaped(std::string_view(msg.payload.data(), msg.payload.size()), &escaped);
    dest.append(std::string_view(escaped));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TextMessageFlag>();
  }
};

// %* : the request id of the logging thread ("-" if none).
class RequestIdFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string& id = t_request_id.empty() ? std::string("-") : t_request_id;
    AppendJsonEscaped(id, dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RequestIdFlag>();
  }
};

// %~ : the message, JSON-escaped.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<RequestIdFlag>('*').add_flag<JsonMessageFlag>('~').add_flag<TextMessageFlag>('&');
  if (g_json) {
    f->set_pattern("{\"ts\":\"%Y-%m-%dT%H:%M:%S.%fZ\",\"level\":\"%l\",\"process\":\"" + g_process +
                   "\",\"logger\":\"%n\",\"request_id\":\"%*\",\"msg\":\"%~\"}");
  } else {
    f->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %L " + g_process + " [%n] [%*] %&");
  }
  return f;
}

}  // namespace

void Init(const submarine::config::v1::LogConfig& config, std::string_view process) {
  std::lock_guard lock(g_mu);
  g_process = std::string(process);
  const char* env = std::getenv("SUBMARINE_LOG_FORMAT");
  g_json = (env != nullptr && std::string_view(env) == "json") || config.format() == "json";
  if (!config.level().empty()) g_level = spdlog::level::from_str(config.level());
  const char* env_level = std::getenv("SUBMARINE_LOG_LEVEL");
  if (env_level != nullptr) g_level = spdlog::level::from_str(env_level);
  g_sinks.clear();
  if (config.file().empty()) {
    g_sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    g_sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.file()));
  }
  for (auto& sink : g_sinks) sink->set_formatter(MakeFormatter());
  spdlog::drop_all();
  auto def = std::make_shared<spdlog::logger>("main", g_sinks.begin(), g_sinks.end());
  def->set_level(g_level);
  def->flush_on(spdlog::level::info);
  spdlog::set_default_logger(def);
}

std::shared_ptr<spdlog::logger> Get(const std::string& subsystem) {
  if (auto existing = spdlog::get(subsystem)) return existing;
  std::lock_guard lock(g_mu);
  if (auto existing = spdlog::get(subsystem)) return existing;
  if (g_sinks.empty()) {
    g_sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    for (auto& sink : g_sinks) sink->set_formatter(MakeFormatter());
  }
  auto logger = std::make_shared<spdlog::logger>(subsystem, g_sinks.begin(), g_sinks.end());
  logger->set_level(g_level);
  logger->flush_on(spdlog::level::info);
  spdlog::register_logger(logger);
  return logger;
}

const std::string& CurrentRequestId() { return t_request_id; }

ScopedRequestId::ScopedRequestId(std::string request_id) : previous_(std::move(t_request_id)) {
  t_request_id = std::move(request_id);
}

ScopedRequestId::~ScopedRequestId() { t_request_id = std::move(previous_); }

}  // namespace submarine::log
