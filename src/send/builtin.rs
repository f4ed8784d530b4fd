//! The built-in templates, embedded from `templates/<provider>/<event>.toml`. Written for hooks
//! with made-up data (never copied from a provider's documentation); the fields that matter
//! follow what each provider documents for its events.

/// Lists template files under `templates/` and embeds each one's text.
macro_rules! templates {
    ($($path:literal),* $(,)?) => {
        /// Every built-in template: its path under `templates/` and its text.
        pub const BUILT_IN: &[(&str, &str)] = &[
            $(($path, include_str!(concat!("templates/", $path)))),*
        ];
    };
}

templates![
    "stripe/payment_intent.succeeded.toml",
    "stripe/invoice.paid.toml",
    "stripe/customer.subscription.updated.toml",
    "stripe/checkout.session.completed.toml",
    "stripe/charge.refunded.toml",
    "github/ping.toml",
    "github/push.toml",
    "github/pull_request.opened.toml",
    "github/issues.opened.toml",
    "github/release.published.toml",
    "github/workflow_run.completed.toml",
    "shopify/orders/create.toml",
    "shopify/orders/paid.toml",
    "shopify/products/update.toml",
    "shopify/app/uninstalled.toml",
    "slack/url_verification.toml",
    "slack/message.toml",
    "slack/slash_command.toml",
    "twilio/message.received.toml",
    "twilio/call.completed.toml",
    "standard-webhooks/user.created.toml",
    "clerk/user.created.toml",
    "resend/email.delivered.toml",
    "discord/ping.toml",
    "discord/application_command.toml",
    "paddle/transaction.completed.toml",
    "linear/Issue.create.toml",
    "zoom/meeting.started.toml",
    "square/payment.updated.toml",
    "mailgun/delivered.toml",
    "intercom/conversation.user.created.toml",
    "gitlab/push.toml",
    "sendgrid/delivered.toml",
    "twitch/channel.follow.toml",
    "typeform/form_response.toml",
    "calendly/invitee.created.toml",
    "hubspot/contact.creation.toml",
];
