// Probe fetches each URL given with Java's two HTTPS clients, HttpClient
// and HttpsURLConnection, using only what the JVM is configured with
// (JAVA_TOOL_OPTIONS), and prints one tab-separated line per call:
// client, URL, "ok" and the body, or "error" and the exception; first
// "java.version" and the version.
// Run as a single-file program: java Probe.java URL...
import java.io.InputStream;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import javax.net.ssl.HttpsURLConnection;

public class Probe {
    public static void main(String[] args) {
        System.out.println("java.version\t" + System.getProperty("java.version"));
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(20)).build();
        for (String u : args) {
            try {
                HttpRequest req = HttpRequest.newBuilder(URI.create(u)).timeout(Duration.ofSeconds(30)).build();
                HttpResponse<String> resp = client.send(req, HttpResponse.BodyHandlers.ofString());
                print("HttpClient", u, resp.statusCode() == 200, resp.body());
            } catch (Exception e) {
                print("HttpClient", u, false, e.toString());
            }
            try {
                HttpsURLConnection c = (HttpsURLConnection) new URL(u).openConnection();
                c.setConnectTimeout(20000);
                c.setReadTimeout(30000);
                try (InputStream in = c.getInputStream()) {
                    print("HttpsURLConnection", u, c.getResponseCode() == 200, new String(in.readAllBytes(), StandardCharsets.UTF_8));
                }
            } catch (Exception e) {
                print("HttpsURLConnection", u, false, e.toString());
            }
        }
    }

    static void print(String client, String url, boolean ok, String detail) {
        System.out.println(client + "\t" + url + "\t" + (ok ? "ok" : "error") + "\t" + detail.replaceAll("\\s+", " "));
    }
}
