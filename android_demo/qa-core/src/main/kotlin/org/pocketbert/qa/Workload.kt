package org.pocketbert.qa

/** One benchmark item: a question about a context; [maxTokens] = one truncated window (synthetic). */
data class WorkloadItem(val id: String, val question: String, val context: String, val maxTokens: Int? = null)

data class Workload(val name: String, val source: String, val items: List<WorkloadItem>) {
    companion object {
        const val FORMAT = "pocketbert-android-workload/1"

        /**
         * A workload file: pocketbert's item list ({"format": FORMAT, "name", "source", "items":
         * [{"id", "question", "context", "max_tokens"?}]}) or a SQuAD v1.1 file as is.
         */
        fun parse(text: String, where: String): Workload {
            val root = try { Json.parse(text).asObj() } catch (e: IllegalArgumentException) {
                throw IllegalArgumentException("workload $where: ${e.message}")
            }
            try {
                if (root["format"] == FORMAT) {
                    val items = root.list("items").mapIndexed { k, it ->
                        val o = it.asObj()
                        WorkloadItem(o["id"]?.toString() ?: "item-$k", o.str("question"), o.str("context"),
                            (o["max_tokens"] as? Number)?.toInt())
                    }
                    return Workload(root["name"] as? String ?: "custom", root["source"] as? String ?: where, items)
                }
                if (root["data"] is List<*>) {
                    val items = ArrayList<WorkloadItem>()
                    for (article in root.list("data")) for (para in article.asObj().list("paragraphs")) {
                        val p = para.asObj()
                        val context = p.str("context")
                        for (qa in p.list("qas")) {
                            val q = qa.asObj()
                            items.add(WorkloadItem(q["id"].toString(), q.str("question").trim(), context))
                        }
                    }
                    return Workload("squad", where, items)
                }
            } catch (e: IllegalArgumentException) {
                throw IllegalArgumentException("workload $where: ${e.message}")
            }
            throw IllegalArgumentException("workload $where: neither $FORMAT (\"format\") nor SQuAD v1.1 (\"data\")")
        }

        /** The app's sample passages, one question each: the default benchmark workload. */
        fun builtin(): Workload = Workload("builtin", "android_demo sample passages",
            SamplePassages.all.flatMapIndexed { i, p ->
                p.questions.mapIndexed { j, q -> WorkloadItem("builtin-$i-$j", q, p.text) }
            })
    }
}
