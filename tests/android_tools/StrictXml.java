import java.io.File;
import javax.xml.parsers.DocumentBuilderFactory;
import org.xml.sax.SAXParseException;
import org.xml.sax.helpers.DefaultHandler;

/**
 * Parses each file named on the command line with the JDK's own XML parser (javax.xml, the parser
 * the Android Gradle plugin's manifest merger and resource compiler read app XML with), namespace
 * aware, fatal on the first error. Prints "OK PATH" or "ERROR PATH:LINE:COLUMN: MESSAGE" per file;
 * exits 1 when any file is not well-formed. Run as a source file: `java StrictXml.java FILE...`.
 */
public class StrictXml {
    public static void main(String[] args) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        int bad = 0;
        for (String path : args) {
            try {
                var builder = f.newDocumentBuilder();
                builder.setErrorHandler(new DefaultHandler() {
                    @Override public void error(SAXParseException e) throws SAXParseException { throw e; }
                    @Override public void warning(SAXParseException e) throws SAXParseException { throw e; }
                });
                builder.parse(new File(path));
                System.out.println("OK " + path);
            } catch (SAXParseException e) {
                bad++;
                System.out.println("ERROR " + path + ":" + e.getLineNumber() + ":" + e.getColumnNumber() + ": " + e.getMessage());
            } catch (Exception e) {
                bad++;
                System.out.println("ERROR " + path + ":0:0: " + e);
            }
        }
        System.exit(bad == 0 ? 0 : 1);
    }
}
