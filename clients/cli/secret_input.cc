#include "clients/cli/secret_input.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

// Reads up to a newline from `fd`, byte by byte (a terminal hands over whole lines anyway).
std::string ReadLineFd(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

absl::StatusOr<std::string> Prompt(const std::string& prompt, bool echo,
                                   const std::string& stdin_flag) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "NO_TERMINAL",
                     stdin_flag.empty()
                         ? std::string("no terminal to prompt on")
                         : absl::StrCat("no terminal to prompt on; pass ", stdin_flag,
                                        " and write the value to standard input"),
                     {});
  }
  termios saved{};
  bool restore = false;
  if (!echo && ::tcgetattr(fd, &saved) == 0) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    restore = ::tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
  }
  (void)!::write(fd, prompt.data(), prompt.size());
  std::string line = ReadLineFd(fd);
  if (restore) ::tcsetattr(fd, TCSAFLUSH, &saved);
  ::close(fd);
  return line;
}

}  // namespace

absl::StatusOr<std::string> ReadSecretLine(std::istream& in, const std::string& what) {
  std::string line;
  if (!std::getline(in, line)) {
    return InvalidField(what, absl::StrCat("expected the ", what, " on standard input"));
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return InvalidField(what, absl::StrCat("the ", what, " is empty"));
  return line;
}

absl::StatusOr<std::string> PromptSecret(const std::string& prompt, const std::string& stdin_flag) {
  return Prompt(prompt, /*echo=*/false, stdin_flag);
}

absl::StatusOr<std::string> PromptLine(const std::string& prompt) {
  return Prompt(prompt, /*echo=*/true, "");
}

}  // namespace submarine::cli
