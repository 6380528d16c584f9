"""Intents for measuring tool search: requests phrased as a user or a model would ask, each with the
tool (or tools) that answers it, by server.

The sets stay apart, because each says something different:

- ``TUNED``: the intents ``bridge.search`` was developed against. Recall here is not evidence that
  the ranking generalises.
- ``HELD_OUT``: written with them, before the first ranking was tuned; only hit counts were seen
  while tuning, their misses later.
- ``FRESH``: written before the current ranking (a real stemmer, BM25 without a test-intent
  thesaurus) was built, from the servers' tool lists alone. While variants of the ranking were
  compared, only hit counts were seen, never which intents missed: the clean check. Misses are
  printed only after a run.

Plain data (no imports), shared by ``bench_deferred.py`` and ``bench_search.py``.
"""

from __future__ import annotations

Intent = tuple[str, str | tuple[str, ...]]

# (intent, expected tool or tools): an alternative is accepted only where two tools truly do the
# same thing (filesystem's read_file is the deprecated name of read_text_file).
MULTIMAIL_INTENTS: list[Intent] = [
    ("reply to the customer in the same thread", "reply_email"),
    ("who is in my address book", "search_contacts"),
    ("find the contact tagged billing", "search_contacts"),
    ("write to jo@globex.example about the delayed order", "send_email"),
    ("what's new in my inbox", "check_inbox"),
    ("open that message and show me its full text", "read_email"),
    ("save the PDF that came with the invoice email", "download_attachment"),
    ("show me the whole conversation with Maria", "get_thread"),
    ("stop the email I queued for tomorrow from going out", "cancel_message"),
    ("change the signature at the bottom of my mails", "update_mailbox"),
    ("change our company's postal address", "update_account"),
    ("shut down the support mailbox for good", "delete_mailbox"),
    ("label this email as urgent", "tag_email"),
    ("save Sam's address as a new contact", "add_contact"),
    ("which plan is my account on and can it send", "get_account"),
    ("create another address for the sales team", "create_mailbox"),
    ("ask my operator for permission to send without review", "request_upgrade"),
    ("enter the upgrade code the operator gave me", "apply_upgrade"),
    ("how many emails did we send this month", "get_usage"),
    ("which emails are waiting for someone to approve them", "list_pending"),
    ("approve the held outgoing message", "decide_email"),
    ("this email is junk, get rid of it", "report_spam"),
    ("that newsletter isn't junk, put it back in my inbox", "not_spam"),
    ("show me what landed in the junk folder", "list_spam"),
    ("remove Maria from my contacts", "delete_contact"),
    ("why does mail to this address keep bouncing", "check_suppression"),
    ("allow delivery again to an address that was blocked", "remove_suppression"),
    ("show the API keys on this account", "list_api_keys"),
    ("generate a new API key with read access", "create_api_key"),
    ("disable a leaked API key", "revoke_api_key"),
    ("who did what on this account recently", "get_audit_log"),
    ("erase my whole account and all its data", "delete_account"),
    ("I need a link to update my credit card details", "get_billing_portal"),
    ("move us to the pro plan", "upgrade_plan"),
    ("go back to the free tier", "cancel_subscription"),
    ("wait until the customer writes back", "wait_for_email"),
    ("notify my server over HTTPS whenever new mail arrives", "create_webhook"),
    ("send this email tomorrow at 9am", "schedule_email"),
    ("move the scheduled email to a later time", "edit_scheduled_email"),
    ("what mailboxes do I have", "list_mailboxes"),
    ("sign up for a new email account", ("create_account", "request_challenge")),
    ("I got an activation code, finish creating my account", "activate_account"),
    ("I never got the activation code, send it again", "resend_confirmation"),
    ("set up my mailbox for the first time", "configure_mailbox"),
    ("which webhooks are registered", "list_webhooks"),
    ("stop sending events to my webhook", "delete_webhook"),
]
MEMORY_INTENTS: list[Intent] = [
    ("create a knowledge graph entity", "create_entities"),
    ("remember that Maria is a person I work with", "create_entities"),
    ("record that Maria works at Globex as a link between them", "create_relations"),
    ("add a new fact about someone you already know", "add_observations"),
    ("forget everything you stored about Sam", "delete_entities"),
    ("drop one outdated fact about Maria", "delete_observations"),
    ("Maria no longer works at Globex, remove that connection", "delete_relations"),
    ("show me everything you remember", "read_graph"),
    ("look through your memory for anything about invoices", "search_nodes"),
    ("pull up the memory entries named Maria and Sam", "open_nodes"),
]
FILESYSTEM_INTENTS: list[Intent] = [
    ("list files in a folder", "list_directory"),
    ("what's in the docs directory and how big is each file", "list_directory_with_sizes"),
    ("print the contents of notes.txt", ("read_text_file", "read_file")),
    ("show me this PNG picture", "read_media_file"),
    ("open these three config files at once", "read_multiple_files"),
    ("save this text into a new file called report.md", "write_file"),
    ("replace one line in config.yaml", "edit_file"),
    ("make a new folder called archive", "create_directory"),
    ("show the whole folder hierarchy as a tree", "directory_tree"),
    ("rename draft.txt to final.txt", "move_file"),
    ("find all the .py files under src", "search_files"),
    ("when was this file last modified", "get_file_info"),
    ("which folders am I allowed to touch", "list_allowed_directories"),
]
# Written together with the lists above, before bridge/search.py was tuned, and never looked at while
# tuning: recall here says whether the tuning generalises beyond the intents it was tuned on.
HELD_OUT: dict[str, list[Intent]] = {
    "multimail": [
        ("send a follow-up to the customer later today at 5pm", "schedule_email"),
        ("did anyone write back to me", "check_inbox"),
        ("get the file attached to that email", "download_attachment"),
        ("answer Maria's last message", "reply_email"),
        ("delete that contact I added by mistake", "delete_contact"),
        ("how much quota is left this month", ("get_usage", "get_account")),
        ("give me a list of the email addresses that bounce", "check_suppression"),
        ("reject the inbound message that's on hold", "decide_email"),
        ("make a fresh API key for the CI job", "create_api_key"),
        ("change the subject of the email scheduled for Friday", "edit_scheduled_email"),
        ("turn on forwarding of inbound mail to my personal address", "update_mailbox"),
        # Written after the first tuning and before the second, and never looked at while tuning.
        ("show me the emails I haven't read yet", "check_inbox"),
        ("remove the webhook that points at my old server", "delete_webhook"),
        ("add the tag invoices to this message", "tag_email"),
        ("look up Sam's email address", "search_contacts"),
        ("what's still waiting for my approval", "list_pending"),
        ("let the held email go out", "decide_email"),
        ("read the body of the latest email from Maria", "read_email"),
        ("how many messages can I still send on my plan", ("get_usage", "get_account")),
        ("change the display name of my mailbox", "update_mailbox"),
        ("mark this message as spam", "report_spam"),
        ("set a reminder email to go out next Monday", "schedule_email"),
    ],
    "memory": [
        ("store a new person called Alex in the graph", "create_entities"),
        ("what do you know about Globex", ("search_nodes", "open_nodes")),
        ("dump the whole knowledge base", "read_graph"),
        ("note that Alex prefers email over phone", "add_observations"),
        # Written after the first tuning and before the second, and never looked at while tuning.
        ("link Sam to the Acme project", "create_relations"),
        ("remove an observation from Alex", "delete_observations"),
        ("find memories that mention the budget", "search_nodes"),
    ],
    "filesystem": [
        ("overwrite settings.json with this content", "write_file"),
        ("how large is data.csv", ("get_file_info", "list_directory_with_sizes")),
        ("move report.md into the archive folder", "move_file"),
        ("look for any file named README anywhere", "search_files"),
        ("view logo.jpg", "read_media_file"),
        ("show the folder layout recursively", "directory_tree"),
        # Written after the first tuning and before the second, and never looked at while tuning.
        ("create the folder logs/2026", "create_directory"),
        ("what's the size and owner of backup.tar", "get_file_info"),
        ("change the word foo to bar in main.py", "edit_file"),
    ],
}
# Only when the third-party servers are missing: the schema zoo stands in for them.
ZOO_INTENTS: list[Intent] = [
    ("echo my arguments back with their JSON types", "echo_types"),
    ("check an order on the server and list what is wrong with it", "validated_order"),
    ("how many sleeps were cancelled", "cancelled_count"),
    ("send me progress updates while you work", "progress"),
    ("pause for a few seconds", "sleep"),
    ("add a new tool while the server is running", "zoo_add_tool"),
    ("give me back a small picture", "image_result"),
    ("return a short sound clip", "audio_result"),
    ("fail on purpose with a tool error", "error_result"),
    ("nest objects three levels deep", "nested_objects"),
]

# Written from the servers' tool lists (names and descriptions read once) before the current ranking
# was built; only their hit count was seen while it was chosen. Where a request fits two tools
# equally, both are accepted; the deprecated read_file is not (read_text_file replaces it).
FRESH: dict[str, list[Intent]] = {
    "multimail": [
        ("email the quarterly report to the finance team", "send_email"),
        ("is there anything new from Globex in my mailbox", "check_inbox"),
        ("let me see everything said back and forth on this subject", "get_thread"),
        ("respond to that message and say thanks", "reply_email"),
        ("grab the spreadsheet someone attached", "download_attachment"),
        ("don't send the message I set up for next week", "cancel_message"),
        ("push the reminder to Thursday instead", "edit_scheduled_email"),
        ("put Alex's email in my contacts", "add_contact"),
        ("I no longer need the marketing inbox, remove it", "delete_mailbox"),
        ("stop this spammer from cluttering my inbox", "report_spam"),
        ("this message was flagged as spam by mistake", "not_spam"),
        ("turn off the key that the old laptop uses", "revoke_api_key"),
        ("what keys exist for accessing the API", "list_api_keys"),
        ("how many messages have gone out today", "get_usage"),
        ("pause until a reply arrives from the supplier", "wait_for_email"),
        ("send a POST to my endpoint each time an email is received", "create_webhook"),
        ("I want to pay for a bigger plan", "upgrade_plan"),
        ("where can I change my payment method", "get_billing_portal"),
        ("show the record of actions taken on my account", "get_audit_log"),
        ("put a BCC of every outgoing email to my boss", ("update_mailbox", "configure_mailbox")),
        ("the operator approved my request, here is the code they sent", "apply_upgrade"),
        ("ask for more autonomy so my emails don't need approval", "request_upgrade"),
        ("unblock this address so mail can reach it again", "remove_suppression"),
        ("which addresses are we not allowed to email", "check_suppression"),
        ("turn down the outgoing email waiting for review", "decide_email"),
    ],
    "filesystem": [
        ("show me what's inside todo.txt", "read_text_file"),
        ("compare the contents of a.txt and b.txt side by side", "read_multiple_files"),
        ("display the photo holiday.png", "read_media_file"),
        ("put the text hello world into greeting.txt", "write_file"),
        ("fix a typo on line 3 of index.html", "edit_file"),
        ("make a subfolder for the invoices", "create_directory"),
        ("what is stored in the downloads folder", ("list_directory", "list_directory_with_sizes")),
        ("which files in here are the biggest", "list_directory_with_sizes"),
        ("give me a nested view of everything under src", "directory_tree"),
        ("move old.log to the trash folder", "move_file"),
        ("locate every json file in the project", "search_files"),
        ("when was budget.xlsx created", "get_file_info"),
        ("what paths can you access", "list_allowed_directories"),
    ],
    "everything": [
        ("repeat back what I say", "echo"),
        ("add 3 and 4", "get-sum"),
        ("what environment variables is the server running with", "get-env"),
        ("send me a small logo picture", "get-tiny-image"),
        ("compress report.txt with gzip", "gzip-file-as-resource"),
        ("run a slow task and tell me how far along it is", "trigger-long-running-operation"),
        ("switch the fake log messages on", "toggle-simulated-logging"),
        ("start sending me resource update notifications", "toggle-subscriber-updates"),
        ("give me a few links to resources", "get-resource-links"),
        ("return data that matches an output schema", "get-structured-content"),
        ("show a message with annotations attached", "get-annotated-message"),
        ("get a reference to one resource", "get-resource-reference"),
    ],
}

# The tuned intents by server, as bench_search.py reads them.
TUNED: dict[str, list[Intent]] = {"multimail": MULTIMAIL_INTENTS, "memory": MEMORY_INTENTS,
                                  "filesystem": FILESYSTEM_INTENTS}
