//! The console's words: one table, every string of every page and of the embedded script in
//! Chinese (zh-CN, the default) and English, chosen by the `lang` cookie.
//!
//! What must always hold: a page shows no string that is not in [`TABLE`] (templates read them
//! as `t.KEY`, and the environment's semi-strict undefined behaviour (printing an undefined value fails) makes a missing key a render
//! error, which the unit tests of `mod.rs` render every page to catch); every key has both
//! languages; keys are unique.

use std::collections::BTreeMap;

/// The two languages of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The language a `lang` cookie value names; anything else is the default.
    pub fn from_cookie(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Every key of [`TABLE`] (and of the staff pages' `staff::words::TABLE`) in this language.
    pub fn words(self) -> BTreeMap<&'static str, &'static str> {
        TABLE
            .iter()
            .chain(super::staff::words::TABLE)
            .map(|&(k, zh, en)| (k, if self == Lang::Zh { zh } else { en }))
            .collect()
    }

    /// One key (the key itself when missing, which the unit tests rule out).
    pub fn word(self, key: &str) -> &'static str {
        TABLE
            .iter()
            .chain(super::staff::words::TABLE)
            .find(|(k, _, _)| *k == key)
            .map(|&(_, zh, en)| if self == Lang::Zh { zh } else { en })
            .unwrap_or("?")
    }
}

/// `(key, zh-CN, en)`.
pub const TABLE: &[(&str, &str, &str)] = &[
    // Layout and navigation.
    ("product", "短信发送平台", "SMS platform"),
    ("nav_dashboard", "概览", "Dashboard"),
    ("nav_send", "发送短信", "Send"),
    ("nav_messages", "发送记录", "Messages"),
    ("nav_inbox", "回复", "Replies"),
    ("nav_optouts", "退订名单", "Opt-outs"),
    ("nav_sendlog", "发送日志导出", "Send log"),
    ("nav_keys", "API 密钥", "API keys"),
    ("nav_webhook", "推送地址", "Webhook"),
    ("nav_staff", "运营管理", "Operations"),
    ("logout", "退出", "Log out"),
    ("signed_in_as", "当前用户", "Signed in as"),
    ("lang_zh", "中文", "中文"),
    ("lang_en", "English", "English"),
    ("error_title", "出错了", "Something went wrong"),
    ("error_daemon", "短信服务暂时无法访问，请稍后再试。", "The SMS service cannot be reached at the moment; try again later."),
    ("error_forbidden", "请求被拒绝（安全校验失败），请刷新页面后重试。", "The request was refused (security check failed); reload the page and try again."),
    ("error_not_found", "页面不存在。", "No such page."),
    ("back_home", "返回首页", "Back to the dashboard"),
    ("none_yet", "暂无记录", "Nothing yet"),
    // Login and password.
    ("login_title", "登录", "Log in"),
    ("login_name", "用户名", "Login"),
    ("password", "密码", "Password"),
    ("login_submit", "登录", "Log in"),
    ("login_bad", "用户名或密码错误。", "Wrong login or password."),
    ("login_locked", "登录失败次数过多，账户已被暂时锁定。", "Too many failed logins: the user is locked for a while."),
    ("login_too_many", "尝试过于频繁，请稍后再试。", "Too many attempts from your address; wait a minute."),
    ("password_title", "修改密码", "Change your password"),
    ("password_first", "首次登录请先修改初始密码。", "Please change the initial password before you go on."),
    ("password_current", "当前密码", "Current password"),
    ("password_new", "新密码（至少 10 位）", "New password (at least 10 characters)"),
    ("password_repeat", "再次输入新密码", "New password again"),
    ("password_submit", "保存新密码", "Save the new password"),
    ("password_mismatch", "两次输入的新密码不一致。", "The two new passwords differ."),
    ("password_wrong_current", "当前密码不正确。", "The current password is wrong."),
    ("password_changed", "密码已修改。", "Your password was changed."),
    // Dashboard.
    ("dash_title", "概览", "Dashboard"),
    ("credit", "可用余额", "Available credit"),
    ("credit_unit", "条", "parts"),
    ("lots", "充值批次", "Credit lots"),
    ("lot", "批次", "Lot"),
    ("lot_bought", "购买", "Bought"),
    ("lot_left", "剩余", "Left"),
    ("lot_expires", "到期日", "Expires"),
    ("lot_state", "状态", "State"),
    ("lot_expiring", "即将到期", "expires soon"),
    ("lot_active", "有效", "active"),
    ("lot_exhausted", "已用完", "used up"),
    ("lot_expired", "已过期", "expired"),
    ("expiry_warning", "有充值批次将在 30 天内到期，请尽快使用。", "A credit lot expires within 30 days: use it before then."),
    ("today", "今日", "Today"),
    ("this_month", "本月", "This month"),
    ("messages_sent", "发送条数", "messages"),
    ("parts_sent", "计费条数", "parts"),
    ("delivery_rate", "送达率", "Delivery rate"),
    ("chart_title", "近 7 天每小时发送量与结果", "Parts per hour and outcomes, last 7 days"),
    ("chart_sent", "已发送", "sent"),
    ("chart_delivered", "已送达", "delivered"),
    ("chart_failed", "失败", "failed"),
    ("stats_unavailable", "统计暂不可用。", "Statistics are not available right now."),
    ("staff_home", "运营人员控制台", "Staff console"),
    ("staff_hint", "请从上方菜单选择功能。", "Choose a page from the menu above."),
    // Send.
    ("send_title", "发送短信", "Send SMS"),
    ("recipients", "接收号码", "Recipients"),
    ("numbers_hint", "每行一个号码，也可用逗号或分号分隔", "One number a line, or separated by commas or semicolons"),
    ("upload", "或上传 CSV / XLSX 文件（号码，可选的逐行内容）", "or upload a CSV / XLSX file (number, optional text per row)"),
    ("check_numbers", "检查号码", "Check the numbers"),
    ("preview", "号码预览", "Preview"),
    ("preview_total", "总数", "rows"),
    ("st_valid", "有效", "valid"),
    ("st_invalid", "无效", "invalid"),
    ("st_duplicate", "重复", "duplicate"),
    ("st_opted_out", "已退订", "opted out"),
    ("st_blacklisted", "黑名单", "blacklisted"),
    ("preview_problems", "有问题的行（最多显示 100 行）", "Rows with a problem (first 100)"),
    ("row_input", "输入", "Input"),
    ("row_status", "结果", "Result"),
    ("row_reason", "原因", "Reason"),
    ("text", "短信内容", "Text"),
    ("as_sent", "实际发送内容", "As it will be sent"),
    ("chars", "字数", "characters"),
    ("parts", "拆分条数", "parts"),
    ("cost", "每个号码计费", "cost per number"),
    ("cost_total", "预计总计费", "estimated total"),
    ("encoding", "编码", "encoding"),
    ("sender_kind", "发送通道", "Sender"),
    ("sender_default", "账户默认", "account default"),
    ("sender_mobile", "手机号", "mobile number"),
    ("sender_phs", "小灵通", "PHS"),
    ("sender_106", "106 号码", "106 number"),
    ("not_before", "定时发送（留空为立即）", "Send at (empty: now)"),
    ("validity", "有效期", "Validity"),
    ("validity_default", "默认", "default"),
    ("submit", "提交发送", "Send"),
    ("submit_needs_check", "请先检查号码，确认预览后再发送。", "Check the numbers and look at the preview before sending."),
    ("submitting", "正在提交", "Submitting"),
    ("submitted", "已提交", "Submitted"),
    ("refused", "被拒绝", "refused"),
    ("batch", "批次", "batch"),
    ("view_messages", "查看这批短信", "See these messages"),
    ("send_failed", "提交失败", "Submitting failed"),
    ("no_valid", "没有可发送的有效号码。", "There is no valid number to send to."),
    ("no_text", "请填写短信内容。", "Write the text first."),
    ("file_unreadable", "无法读取文件", "Cannot read the file"),
    // Messages.
    ("messages_title", "发送记录", "Messages"),
    ("q_number", "号码", "Number"),
    ("q_from", "开始日期", "From"),
    ("q_to", "结束日期", "To"),
    ("q_state", "状态", "State"),
    ("q_batch", "批次（编号范围，如 120-180）", "Batch (id range, e.g. 120-180)"),
    ("q_any", "全部", "any"),
    ("search", "查询", "Search"),
    ("live", "状态实时更新中", "Live updates on"),
    ("col_id", "编号", "Id"),
    ("col_to", "号码", "To"),
    ("col_state", "状态", "State"),
    ("col_parts", "条数", "Parts"),
    ("col_created", "提交时间", "Created"),
    ("col_delivered", "送达时间", "Delivered"),
    ("col_channel", "通道", "Channel"),
    ("scan_capped", "只查询了最近的记录；请缩小日期或批次范围。", "Only the most recent messages were searched; narrow the dates or the batch."),
    ("message_title", "短信详情", "Message"),
    ("part", "分段", "Part"),
    ("sim", "SIM 卡", "SIM"),
    ("gateway", "网关", "Gateway"),
    ("error", "错误", "Error"),
    ("sender", "发送方", "Sender"),
    ("s_queued", "排队中", "queued"),
    ("s_held_for_review", "待审核", "held for review"),
    ("s_scheduled", "定时", "scheduled"),
    ("s_sending", "发送中", "sending"),
    ("s_sent", "已发送", "sent"),
    ("s_delivered", "已送达", "delivered"),
    ("s_failed", "失败", "failed"),
    ("s_expired", "已过期", "expired"),
    ("s_rejected", "已拒绝", "rejected"),
    ("s_cancelled", "已取消", "cancelled"),
    ("s_unknown", "待确认", "unknown"),
    // Inbox, opt-outs, send log.
    ("inbox_title", "回复", "Replies"),
    ("col_from", "号码", "From"),
    ("col_text", "内容", "Text"),
    ("col_received", "接收时间", "Received"),
    ("optouts_title", "退订名单", "Opt-outs"),
    ("col_number", "号码", "Number"),
    ("col_at", "时间", "Time"),
    ("col_source", "来源", "Source"),
    ("sendlog_title", "发送日志导出", "Send log export"),
    ("sendlog_hint", "按日期范围导出本账户的发送日志（CSV）。", "Your account's own send log for a date range, as CSV."),
    ("download", "下载 CSV", "Download CSV"),
    // API keys.
    ("keys_title", "API 密钥", "API keys"),
    ("key_name", "名称", "Name"),
    ("key_ips", "IP 白名单（每行一个地址或网段，留空为不限）", "IP allow-list (an address or CIDR a line; empty: any)"),
    ("key_create", "创建密钥", "Create a key"),
    ("key_shown_once", "新密钥只显示这一次，请立即复制保存：", "The new key is shown this once; copy it now:"),
    ("key_prefix", "前缀", "Prefix"),
    ("key_created", "创建时间", "Created"),
    ("key_revoked", "已吊销", "revoked"),
    ("key_revoke", "吊销", "Revoke"),
    ("key_revoked_ok", "密钥已吊销。", "The key was revoked."),
    ("key_any_ip", "不限", "any"),
    // Webhook.
    ("webhook_title", "推送地址", "Webhook"),
    ("webhook_hint", "状态报告和回复将以 JSON POST 到此地址，并用密钥签名（HMAC-SHA256）。", "Delivery reports and replies are POSTed to this URL as JSON, signed with the secret (HMAC-SHA256)."),
    ("webhook_url", "推送 URL", "URL"),
    ("webhook_save", "保存（生成新密钥）", "Save (makes a new secret)"),
    ("webhook_remove", "删除推送", "Remove the webhook"),
    ("webhook_secret", "签名密钥只显示这一次，请立即保存：", "The signing secret is shown this once; keep it now:"),
    ("webhook_none", "尚未设置推送地址。", "No webhook is set."),
    ("webhook_removed", "推送地址已删除。", "The webhook was removed."),
    ("stuck_title", "推送失败的事件", "Events that could not be pushed"),
    ("col_attempts", "尝试次数", "Attempts"),
    ("col_first", "首次尝试", "First attempt"),
    ("col_last", "最近尝试", "Last attempt"),
    ("col_error", "最近错误", "Last error"),
    ("col_event", "事件", "Event"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_both_languages_are_there() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, zh, en) in TABLE {
            assert!(seen.insert(*k), "key {k} twice");
            assert!(!zh.is_empty() && !en.is_empty(), "key {k} lacks a language");
        }
        assert_eq!(Lang::from_cookie(Some("en")), Lang::En);
        assert_eq!(Lang::from_cookie(Some("fr")), Lang::Zh);
        assert_eq!(Lang::from_cookie(None), Lang::Zh);
        assert_eq!(Lang::En.word("logout"), "Log out");
    }
}
