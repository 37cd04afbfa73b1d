package org.pocketbert.demo

import android.app.Activity
import android.os.Bundle
import android.widget.TextView

/**
 * Firebase Test Lab's game-loop entry (`gcloud firebase test android run --type game-loop`): FTL
 * starts this activity with action com.google.intent.action.TEST_LOOP; it runs FarmRun on a
 * background thread and finishes, which ends the loop. Declared in debug builds only.
 */
class GameLoopActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(TextView(this).apply { text = "pocketbert farm benchmark running…"; setPadding(32, 32, 32, 32) })
        if (savedInstanceState != null) return
        Thread {
            FarmRun.run(this, "gameloop-${System.currentTimeMillis()}")
            runOnUiThread { finish() }
        }.apply { name = "pocketbert-farm"; start() }
    }
}
