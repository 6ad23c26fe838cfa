// The bank example's handlers (see proto/example/bank/bank.proto).
#pragma once

#include "massa/sdk/function.h"

namespace example::bank {

// The auditor's actor name and the channel it listens to.
inline constexpr char kAuditor[] = "auditor";
inline constexpr char kAuditChannel[] = "audit";

// Registers Accounts, Bank and Auditor. Transfers call the accounts from inside their handler,
// so the function must run with handler threads (--handler-threads N).
void RegisterBank(massa::sdk::Function& function);

}  // namespace example::bank
