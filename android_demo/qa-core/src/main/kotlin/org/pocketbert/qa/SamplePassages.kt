package org.pocketbert.qa

/** Passages the app opens with (written for this demo; editable on screen), with questions to try. */
data class SamplePassage(val title: String, val text: String, val questions: List<String>)

object SamplePassages {
    val all: List<SamplePassage> = listOf(
        SamplePassage(
            "Pocket-sized transformers",
            "DistilBERT was introduced in 2019 by researchers at Hugging Face. It keeps six of the " +
                "twelve layers of BERT-base and is trained with a triple loss: the teacher's soft " +
                "targets, the masked language modelling loss, and a cosine loss that aligns the hidden " +
                "states of student and teacher. The student has 66 million parameters, runs about 60% " +
                "faster than its teacher, and retains 97% of its language understanding on GLUE. The " +
                "authors also ran it on an iPhone 7 Plus, where it was 71% faster than BERT-base for " +
                "question answering, without counting the tokenization step.",
            listOf("How many layers does DistilBERT keep?", "Which phone was it tested on?",
                "How much faster than its teacher is the student?"),
        ),
        SamplePassage(
            "The lighthouse at Cape Ardent",
            "The lighthouse at Cape Ardent was first lit on 12 March 1874. Its keeper, Marguerite " +
                "Olsson, kept a logbook for thirty-one years, recording every ship that passed and every " +
                "storm that struck the headland. In 1921 the oil lamp was replaced by an electric lamp " +
                "visible for 22 nautical miles. The tower is 38 metres tall and painted in red and white " +
                "bands; since 1987 it has operated automatically, and the keeper's cottage now houses a " +
                "small museum of maritime charts.",
            listOf("Who kept the logbook?", "How far can the electric lamp be seen?",
                "When did the lighthouse start operating automatically?"),
        ),
        SamplePassage(
            "Sourdough",
            "A sourdough starter is a mixture of flour and water colonised by wild yeasts and lactic " +
                "acid bacteria. Bakers feed it every day with equal weights of flour and water, and it " +
                "is ready to bake with when it doubles in volume within four to six hours of a feeding. " +
                "The bacteria produce lactic and acetic acids, which give the bread its sour taste and " +
                "help it keep longer. A loaf typically proofs for twelve hours in a cool place before " +
                "it is baked at 250 °C in a covered pot.",
            listOf("What lives in a sourdough starter?", "At what temperature is the loaf baked?",
                "Why does the bread taste sour?"),
        ),
        SamplePassage(
            "Café society (accents, quotes, emoji)",
            "In the 1920s the Café de Flore in Paris was a meeting place for writers — Apollinaire " +
                "had founded a review there, «Les Soirées de Paris», years earlier. Regulars ordered " +
                "a café crème ☕ and stayed for hours. Jean-Paul Sartre later said: “We settled in there " +
                "completely: from nine in the morning till noon we worked.” The café is still open, at " +
                "172 boulevard Saint-Germain.",
            listOf("What review did Apollinaire found?", "Where is the café?", "What did regulars order?"),
        ),
    )
}
