//! The staff pages' words: `(key, zh-CN, en)`, read by `i18n.rs` after its own table (one
//! lookup for the templates, `t.KEY`). Kept apart so the staff pages add words without
//! touching the customer pages' table.
//!
//! What must always hold: every key has both languages, and no key is also in `i18n::TABLE`
//! (the unit test below checks both).

/// `(key, zh-CN, en)`.
pub const TABLE: &[(&str, &str, &str)] = &[
    // Menu and refusals.
    ("nav_live", "设备状态", "Modems & gateways"),
    ("nav_reviews", "内容审核", "Review queue"),
    ("nav_accounts", "客户账户", "Accounts"),
    ("nav_users", "用户", "Users"),
    ("nav_blacklist", "黑名单", "Blacklists"),
    ("nav_audit", "审计日志", "Audit log"),
    ("error_staff_only", "此页面仅限运营人员（相应角色）访问。", "This page is for the operator's staff (with the right role) only."),
    // Notices after a change.
    ("ok_approve", "已通过，短信将发送。", "Approved: the message will be sent."),
    ("ok_reject", "已拒绝，费用已退回。", "Rejected: the credit was refunded."),
    ("ok_reject_as_violation", "已按违规拒绝：已计费，账户已列入黑名单。", "Rejected as a violation: charged, and the account is blacklisted."),
    ("ok_credit", "充值批次已添加。", "The credit lot was added."),
    ("ok_blacklisted", "已加入黑名单。", "Blacklisted."),
    ("ok_lifted", "已移出黑名单。", "Taken off the blacklist."),
    ("ok_unchanged", "没有变化（已是该状态）。", "Nothing changed (it already was so)."),
    ("ok_disabled", "用户已停用，其会话已结束。", "The user is disabled; its sessions ended."),
    ("ok_enabled", "用户已启用。", "The user is enabled."),
    // Live.
    ("live_title", "短信猫与网关（实时）", "Modems and gateways (live)"),
    ("live_updated", "最近刷新", "Last refreshed"),
    ("live_off", "刷新失败，正在重试", "Refresh failed; retrying"),
    ("modems", "短信猫", "Modems"),
    ("gateways", "运营商网关", "Carrier gateways"),
    ("col_port", "端口", "Port"),
    ("col_signal", "信号", "Signal"),
    ("col_carrier", "运营商", "Carrier"),
    ("col_quota_used", "已用配额（分/时/日）", "Quota used (min/hour/day)"),
    ("col_quota_left", "剩余配额（分/时/日）", "Quota left (min/hour/day)"),
    ("col_counters", "发送/失败/送达/接收", "Sent/failed/delivered/received"),
    ("col_errors", "错误", "Errors"),
    ("col_rate", "条/分钟", "Parts/min"),
    ("col_gateway", "网关", "Gateway"),
    ("col_address", "地址", "Address"),
    ("col_links", "连接（在线/总数）", "Links (up/all)"),
    ("col_window", "窗口占用", "Window in use"),
    ("col_submits", "已提交", "Submitted"),
    ("col_results", "提交结果", "Submit results"),
    ("no_modems", "没有短信猫。", "No modem."),
    ("no_gateways", "没有配置运营商网关。", "No carrier gateway is configured."),
    ("m_starting", "启动中", "starting"),
    ("m_ready", "就绪", "ready"),
    ("m_sending", "发送中", "sending"),
    ("m_resting", "休息中", "resting"),
    ("m_failed", "故障", "failed"),
    ("m_gone", "已拔出", "gone"),
    ("m_duplicate", "重复端口", "duplicate port"),
    // Reviews.
    ("reviews_title", "内容审核", "Review queue"),
    ("reviews_hint", "命中的关键词已高亮显示。", "The matched words are highlighted."),
    ("col_account", "账户", "Account"),
    ("col_category", "类别", "Category"),
    ("col_held", "提交时间", "Held since"),
    ("col_decision", "处理", "Decision"),
    ("approve", "通过", "Approve"),
    ("reject", "拒绝", "Reject"),
    ("reject_violation", "违规拒绝", "Reject as violation"),
    ("violation_confirm", "按违规拒绝将计费并把账户列入黑名单。", "A violation is charged and blacklists the account."),
    ("no_reviews", "没有待审核的短信。", "Nothing is waiting for review."),
    // Accounts and credit.
    ("accounts_title", "客户账户", "Accounts"),
    ("col_name", "名称", "Name"),
    ("col_signature", "必须签名", "Signature required"),
    ("col_suffix", "退订后缀", "Unsubscribe suffix"),
    ("col_window_send", "发送时段", "Send window"),
    ("col_blacklisted", "黑名单", "Blacklisted"),
    ("yes", "是", "yes"),
    ("no", "否", "no"),
    ("account_title", "账户", "Account"),
    ("credit_add_title", "充值（新增批次）", "Add credit (a new lot)"),
    ("credit_messages", "条数", "Messages"),
    ("credit_price", "价格（元）", "Price (yuan)"),
    ("credit_expires", "到期日（留空为一年后）", "Expires on (empty: in a year)"),
    ("credit_add", "充值", "Add credit"),
    ("credit_bad_price", "价格格式不正确（例如 450 或 450.50）。", "The price is not valid (e.g. 450 or 450.50)."),
    ("credit_bad_messages", "条数须为正整数。", "Messages must be a positive whole number."),
    ("credit_bad_date", "到期日格式不正确（YYYY-MM-DD）。", "The date is not valid (YYYY-MM-DD)."),
    ("account_users", "该账户的用户", "This account's users"),
    ("manage_users", "管理用户", "Manage users"),
    // Users.
    ("users_title", "用户", "Users"),
    ("col_login", "用户名", "Login"),
    ("col_role", "角色", "Role"),
    ("col_status", "状态", "State"),
    ("col_last_login", "最近登录", "Last login"),
    ("role_customer", "客户", "customer"),
    ("role_reviewer", "审核员", "reviewer"),
    ("role_admin", "管理员", "admin"),
    ("staff_account", "（运营人员，无账户）", "(staff, no account)"),
    ("u_active", "正常", "active"),
    ("u_disabled", "已停用", "disabled"),
    ("u_must_change", "需修改初始密码", "must change the password"),
    ("u_locked", "已锁定至", "locked until"),
    ("user_add_title", "新增用户", "Add a user"),
    ("user_password_hint", "初始密码（至少 10 位；留空则随机生成）", "Initial password (at least 10 characters; empty: a random one)"),
    ("user_add", "新增用户", "Add the user"),
    ("user_reset", "重置密码", "Reset password"),
    ("user_disable", "停用", "Disable"),
    ("user_enable", "启用", "Enable"),
    ("password_shown_once", "该用户的初始密码只显示这一次，请安全地告知本人（首次登录须修改）：", "The user's initial password is shown this once; pass it on safely (it must be changed at the first login):"),
    // Blacklists.
    ("blacklist_title", "黑名单", "Blacklists"),
    ("bl_add_title", "加入黑名单", "Add to a blacklist"),
    ("bl_number", "号码（留空则拉黑整个账户）", "Number (empty: blacklist the whole account)"),
    ("bl_account", "账户（留空为全局号码黑名单）", "Account (empty: the global number blacklist)"),
    ("bl_reason", "原因（必填）", "Reason (required)"),
    ("bl_add", "加入黑名单", "Blacklist"),
    ("bl_accounts", "被列入黑名单的账户", "Blacklisted accounts"),
    ("bl_numbers", "号码黑名单", "Blacklisted numbers"),
    ("bl_global", "全局", "global"),
    ("bl_remove", "移出", "Lift"),
    ("bl_remove_reason", "移出原因", "Reason for lifting"),
    ("col_reason", "原因", "Reason"),
    ("col_added_by", "操作人", "By"),
    ("col_since", "时间", "Since"),
    // Audit.
    ("audit_title", "审计日志", "Audit log"),
    ("audit_verify_title", "校验哈希链", "Verify the hash chain"),
    ("audit_verify", "立即校验", "Verify now"),
    ("audit_intact", "审计日志完整，记录数：", "The audit log is intact; records:"),
    ("audit_broken", "审计日志已被篡改，首个异常记录：", "The audit log is broken at record"),
    ("audit_export_title", "导出审计记录", "Export records"),
    ("audit_from", "开始日期", "From (day)"),
    ("audit_to", "结束日期（含当天）", "To (day, inclusive)"),
    ("audit_number", "号码（可选）", "Number (optional)"),
    ("audit_account", "账户（可选）", "Account (optional)"),
    ("audit_format", "格式", "Format"),
    ("audit_export", "导出", "Export"),
    ("audit_bad_range", "请填写有效的开始和结束日期（结束不早于开始）。", "Give a valid from and to day (to not before from)."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_words_are_unique_complete_and_not_in_the_console_table() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, zh, en) in TABLE {
            assert!(seen.insert(*k), "staff key {k} twice");
            assert!(
                !zh.is_empty() && !en.is_empty(),
                "staff key {k} lacks a language"
            );
            assert!(
                !crate::web::console::i18n::TABLE
                    .iter()
                    .any(|(c, _, _)| c == k),
                "staff key {k} is also in i18n::TABLE"
            );
        }
        use crate::web::console::i18n::Lang;
        assert_eq!(Lang::En.word("nav_reviews"), "Review queue");
        assert!(Lang::Zh.words().contains_key("audit_verify"));
    }
}
