"""pocketbert: distil BERT-family models the DistilBERT way, export them to phones, benchmark them."""

__version__ = "0.1.0"
