// Runs org.apache.kafka.tools.ProducerPerformance twice in one JVM: first a
// warm-up pass of N records (args[0]), then the measured pass with the
// remaining arguments as given. For ProducerPerformance versions without
// --warmup-records (it came with KIP-1052 in Kafka 4.x), so that the measured
// pass runs on JIT-compiled code. Each pass builds its own KafkaProducer, so
// the measured pass still fetches metadata and connects inside its clock.
// benches/compare.sh compiles this against the kafka-tools it resolved with
// benches/java-mock/pom.xml.
import java.util.ArrayList;
import java.util.List;

public final class WarmupThenRun {
    public static void main(String[] args) throws Exception {
        long warmup = Long.parseLong(args[0]);
        List<String> rest = new ArrayList<>(List.of(args).subList(1, args.length));
        if (warmup > 0) {
            List<String> w = new ArrayList<>(rest);
            int i = w.indexOf("--num-records");
            if (i < 0 || i + 1 >= w.size()) {
                throw new IllegalArgumentException("--num-records is required");
            }
            w.set(i + 1, Long.toString(warmup));
            System.out.println("warm-up pass: " + warmup + " records");
            org.apache.kafka.tools.ProducerPerformance.main(w.toArray(new String[0]));
            System.out.println("measured pass");
        }
        org.apache.kafka.tools.ProducerPerformance.main(rest.toArray(new String[0]));
    }
}
