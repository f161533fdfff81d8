"""What each JSON API endpoint does, as the tokens page lists it (keyed "api.<METHOD> <path>").

The English is the endpoint's docstring summary where it has one; body shapes and field names stay as
they are typed, in both languages.
"""

MESSAGES: dict[str, dict[str, str]] = {
    "api.GET /api/datasets": {"en": "Datasets with their latest version.", "zh": "数据集列表及其最新版本。"},
    "api.GET /api/datasets/{dataset_id}": {
        "en": "One dataset with its versions.",
        "zh": "单个数据集及其全部版本。",
    },
    "api.GET /api/datasets/{dataset_id}/diff": {
        "en": "What changed between two versions of a dataset.",
        "zh": "数据集两个版本之间的差异。",
    },
    "api.GET /api/datasets/{dataset_id}/versions/{number}": {
        "en": "One version: size, status and task_type counts.",
        "zh": "单个版本：样本数、状态和各 task_type 计数。",
    },
    "api.POST /api/datasets/{dataset_id}/versions/{number}/edit": {
        "en": 'Edit samples into a new version: {"action": drop|add_tag|remove_tag|set_task_type, "value": ..., '
        '"sample_ids": [...]} or "scope": "query".',
        "zh": '编辑样本并生成新版本：{"action": drop|add_tag|remove_tag|set_task_type, "value": ..., '
        '"sample_ids": [...]} 或 "scope": "query"。',
    },
    "api.GET /api/datasets/{dataset_id}/versions/{number}/export.jsonl": {
        "en": "The version as OpenAI messages JSONL.",
        "zh": "以 OpenAI 消息格式 JSONL 导出该版本。",
    },
    "api.GET /api/datasets/{dataset_id}/versions/{n}/samples": {
        "en": "One page of 50 samples; follow `next_after` (or `prev_before`) for the next page. "
        "Filters as the browser's.",
        "zh": "每页 50 个样本；用 `next_after`（或 `prev_before`）翻页。筛选条件与浏览页相同。",
    },
    "api.GET /api/datasets/{dataset_id}/versions/{n}/samples/count": {
        "en": "How many samples match the filters.",
        "zh": "符合筛选条件的样本数。",
    },
    "api.GET /api/datasets/{dataset_id}/versions/{n}/stats": {
        "en": "The version's statistics (null until indexing has finished), with its status and progress.",
        "zh": "该版本的统计（索引完成前为 null），及其状态和进度。",
    },
    "api.GET /api/imports/{job_id}": {
        "en": "An import's status and report.",
        "zh": "导入任务的状态和报告。",
    },
    "api.GET /api/jobs": {
        "en": "Jobs of every kind, newest first unless sorted otherwise; at most 500.",
        "zh": "所有类型的任务，默认最新的在前；最多 500 个。",
    },
    "api.GET /api/jobs/{job_id}": {
        "en": "One job with its error, log tail and result.",
        "zh": "单个任务及其错误、日志末尾和结果。",
    },
    "api.POST /api/jobs/{job_id}/cancel": {
        "en": "Queued: cancelled at once. Running: flagged; the worker stops it within a heartbeat. Finished: 409.",
        "zh": "排队中：立即取消。运行中：标记取消，worker 在一次心跳内停止它。已结束：409。",
    },
    "api.GET /api/me": {
        "en": "The account the token or session belongs to.",
        "zh": "令牌或会话所属的账号。",
    },
    "api.POST /api/me/password": {
        "en": "Change your own password; other sessions end.",
        "zh": "修改自己的密码；其他会话随之结束。",
    },
    "api.GET /api/runs": {"en": "Runs, newest first, with filters.", "zh": "训练列表，最新的在前，可筛选。"},
    "api.POST /api/runs": {
        "en": 'Launch a run: {"name", "datasets": [{"dataset_id", "version"}], "eval_dataset"?, "base_model"?, '
        '"config"?, "mix"?, "queue"?, "n_gpus"?, "n_procs"?}.',
        "zh": '启动训练：{"name", "datasets": [{"dataset_id", "version"}], "eval_dataset"?, "base_model"?, '
        '"config"?, "mix"?, "queue"?, "n_gpus"?, "n_procs"?}。',
    },
    "api.GET /api/runs/compare": {
        "en": "Several runs' curves side by side.",
        "zh": "多个训练的曲线对比。",
    },
    "api.GET /api/runs/diff": {
        "en": "How two runs' configs differ.",
        "zh": "两个训练配置的差异。",
    },
    "api.POST /api/runs/estimate": {
        "en": "The estimate for the same JSON body as POST /api/runs, without launching.",
        "zh": "对与 POST /api/runs 相同的 JSON 请求体做预估，不启动训练。",
    },
    "api.GET /api/runs/{run_id}": {
        "en": "One run: status, progress, config and data counts.",
        "zh": "单个训练：状态、进度、配置和数据计数。",
    },
    "api.POST /api/runs/{run_id}/cancel": {"en": "Cancel a run.", "zh": "取消训练。"},
    "api.GET /api/runs/{run_id}/events": {
        "en": "Events stored after seq `after`, in seq order, at most 5000, as the trainer wrote them.",
        "zh": "seq 在 `after` 之后的事件，按 seq 排序，最多 5000 条，保持训练器写出的原样。",
    },
    "api.GET /api/runs/{run_id}/log": {
        "en": "The log tail alone: what the run page refreshes every few seconds, without the rest of page_data.",
        "zh": "仅日志末尾：训练页面每隔几秒刷新的内容。",
    },
    "api.POST /api/runs/{run_id}/resume": {
        "en": "Resume a stopped run from its latest checkpoint.",
        "zh": "从最新检查点恢复已停止的训练。",
    },
    "api.GET /api/runs/{run_id}/samples/{index}": {
        "en": "One training sample of a run, as the trainer saw it.",
        "zh": "训练中的单个样本，与训练器看到的一致。",
    },
    "api.GET /api/runs/{run_id}/series": {
        "en": "The charts' first load: every curve downsampled, plus epoch boundaries and markers.",
        "zh": "图表首次加载的数据：降采样后的全部曲线，以及 epoch 边界和标记。",
    },
    "api.GET /api/runs/{run_id}/stream": {
        "en": "Live updates as server-sent events: each message is what /series?after= answers; ends with "
        '"event: finished". Resumes after Last-Event-ID.',
        "zh": "以服务器推送事件（SSE）发送的实时更新：每条消息即 /series?after= 的返回；以 "
        '"event: finished" 结束，断线后从 Last-Event-ID 继续。',
    },
    "api.GET /api/samples/{sample_id}": {
        "en": "One sample with its messages.",
        "zh": "单个样本及其消息。",
    },
    "api.POST /api/sweeps": {
        "en": 'The launch body of POST /api/runs plus "grid": {"epochs": [..], "lr": [..], "task": "nli", '
        '"shares": [..]}.',
        "zh": 'POST /api/runs 的请求体，外加 "grid": {"epochs": [..], "lr": [..], "task": "nli", "shares": [..]}。',
    },
    "api.GET /api/sweeps/{sweep_id}": {
        "en": "A sweep's runs as a table.",
        "zh": "超参扫描的各个训练汇总表。",
    },
    "api.GET /api/tokens": {
        "en": "Your tokens: name, prefix, created, last used, expiry (never the token).",
        "zh": "你的令牌：名称、前缀、创建时间、最近使用、过期时间（不含令牌本身）。",
    },
    "api.POST /api/tokens": {
        "en": "Create a token, optionally expiring in `expires_in_days`; the answer is the only time it is shown.",
        "zh": "创建令牌，可用 `expires_in_days` 设定过期；令牌只在这次响应中显示。",
    },
    "api.DELETE /api/tokens/{token_id}": {"en": "Revoke one of your tokens.", "zh": "吊销你的一个令牌。"},
    "api.GET /api/uploads": {"en": "Your uploads.", "zh": "你的上传文件。"},
    "api.POST /api/uploads": {
        "en": "Raw body (name in ?filename= or X-Filename) or multipart field `file`; streamed to disk either way.",
        "zh": "原始请求体（文件名放在 ?filename= 或 X-Filename）或 multipart 字段 `file`；都以流式写入磁盘。",
    },
    "api.GET /api/uploads/{upload_id}": {
        "en": "One upload with its guessed format and mapping.",
        "zh": "单个上传文件及推测的格式和映射。",
    },
    "api.POST /api/uploads/{upload_id}/import": {
        "en": 'Body: {"mapping": {...}, "name", "kind", "policy", "target_dataset_id"}; what is left out is guessed.',
        "zh": '请求体：{"mapping": {...}, "name", "kind", "policy", "target_dataset_id"}；省略的部分自动推测。',
    },
    "api.GET /api/users": {"en": "All accounts (admin).", "zh": "所有账号（管理员）。"},
    "api.POST /api/users": {
        "en": "Create an account with a role (admin).",
        "zh": "创建带角色的账号（管理员）。",
    },
    "api.PATCH /api/users/{user_id}": {
        "en": "Change role, deactivate/reactivate, or reset the password; the last admin stays an active admin.",
        "zh": "修改角色、停用/启用或重置密码；最后一个管理员必须保持启用。",
    },
}
